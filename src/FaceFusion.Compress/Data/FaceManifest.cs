using FaceFusion.Compress.Reporting;
using System.Globalization;
using CsvHelper;

namespace FaceFusion.Compress.Data;

/// <summary>Which split a face belongs to.</summary>
public static class Splits
{
    public const string Train = "train", Val = "val", Test = "test";
    public static readonly string[] All = [Train, Val, Test];
}

/// <summary>
/// One aligned face: a row of `manifest.csv`. Landmarks are in the coordinates of the <see cref="CropSize"/>-px
/// crop; <see cref="Affine"/> maps source-frame pixels to that crop.
/// </summary>
[CsvRecord]
public sealed partial class FaceRecord
{
    [CsvColumn("id")] public string Id { get; set; } = "";
    [CsvColumn("identity")] public string Identity { get; set; } = "";
    [CsvColumn("source_file")] public string SourceFile { get; set; } = "";
    /// <summary>Frame index in a video; −1 for a still image.</summary>
    [CsvColumn("frame")] public int Frame { get; set; } = -1;
    [CsvColumn("split")] public string Split { get; set; } = "";
    [CsvColumn("box_x1")] public float BoxX1 { get; set; }
    [CsvColumn("box_y1")] public float BoxY1 { get; set; }
    [CsvColumn("box_x2")] public float BoxX2 { get; set; }
    [CsvColumn("box_y2")] public float BoxY2 { get; set; }
    [CsvColumn("detector_score")] public float DetectorScore { get; set; }
    /// <summary>136 numbers x0 y0 x1 y1 … separated by spaces, in crop pixels.</summary>
    [CsvColumn("landmarks")] public string Landmarks { get; set; } = "";
    /// <summary>Frame→crop affine, six numbers "a b c d e f" (x' = a·x + b·y + c, y' = d·x + e·y + f).</summary>
    [CsvColumn("affine")] public string Affine { get; set; } = "";
    [CsvColumn("crop_size")] public int CropSize { get; set; }
    /// <summary>Crop PNG relative to the dataset folder, at <see cref="CropSize"/>; other sizes live beside it under crops/SIZE/.</summary>
    [CsvColumn("crop_file")] public string CropFile { get; set; } = "";
    [CsvColumn("embedding_file")] public string EmbeddingFile { get; set; } = "";
    /// <summary>Row index (in units of 512 floats) of this face's embedding in <see cref="EmbeddingFile"/>.</summary>
    [CsvColumn("embedding_offset")] public int EmbeddingOffset { get; set; }
    /// <summary>Head yaw in degrees estimated from the landmarks (positive: turned to the image's right).</summary>
    [CsvColumn("yaw_deg")] public float YawDegrees { get; set; }
    /// <summary>Mean luma of the crop, 0–255 (for low-light slices).</summary>
    [CsvColumn("brightness")] public float Brightness { get; set; }

    public (double X, double Y)[] LandmarkPoints()
    {
        var v = Landmarks.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        if (v.Length % 2 != 0) throw new FormatException($"face {Id}: odd number of landmark coordinates");
        return Enumerable.Range(0, v.Length / 2).Select(i => (v[2 * i], v[2 * i + 1])).ToArray();
    }

    public static string FormatPoints(IEnumerable<(double X, double Y)> points) =>
        string.Join(' ', points.SelectMany(p => new[] { p.X, p.Y }).Select(v => v.ToString("0.###", CultureInfo.InvariantCulture)));
}

/// <summary>Reads and writes `manifest.csv` (CsvHelper) and the embedding file it points at.</summary>
public static class FaceManifest
{
    public const string FileName = "manifest.csv";
    public const string EmbeddingsFileName = "embeddings.f32";
    public const int EmbeddingSize = 512;

    /// <summary>Writes the manifest through a temporary file and a rename.</summary>
    public static void Write(string path, IEnumerable<FaceRecord> records)
    {
        CsvAppend.Write(path, records);
    }

    /// <summary>Reads a manifest; errors name the file and the line.</summary>
    public static List<FaceRecord> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: manifest not found; run `ffc data prepare`", path);
        try
        {
            using var csv = CsvReader.FromFile(path);
            return csv.GetRecords<FaceRecord>().ToList();
        }
        catch (Exception e) when (e is CsvFormatException or KeyNotFoundException or FormatException)
        {
            throw new InvalidDataException($"{path}: malformed manifest ({e.Message}{(e.InnerException is null ? "" : ": " + e.InnerException.Message)})", e);
        }
    }

    /// <summary>Reads the embedding of a face from the dataset folder.</summary>
    public static float[] ReadEmbedding(string datasetDir, FaceRecord record)
    {
        using var stream = File.OpenRead(Path.Combine(datasetDir, record.EmbeddingFile));
        var bytes = new byte[EmbeddingSize * 4];
        stream.Seek((long)record.EmbeddingOffset * bytes.Length, SeekOrigin.Begin);
        stream.ReadExactly(bytes);
        var v = new float[EmbeddingSize];
        Buffer.BlockCopy(bytes, 0, v, 0, bytes.Length);
        return v;
    }

    /// <summary>All embeddings of a dataset folder, row by row.</summary>
    public static float[][] ReadAllEmbeddings(string datasetDir)
    {
        var bytes = File.ReadAllBytes(Path.Combine(datasetDir, EmbeddingsFileName));
        int rows = bytes.Length / (EmbeddingSize * 4);
        var all = new float[rows][];
        for (int r = 0; r < rows; r++)
        {
            all[r] = new float[EmbeddingSize];
            Buffer.BlockCopy(bytes, r * EmbeddingSize * 4, all[r], 0, EmbeddingSize * 4);
        }
        return all;
    }
}
