using FaceFusion.Compress.Assets;
using CsvHelper;

namespace FaceFusion.Compress.Reporting;

/// <summary>One row of `bench.csv`: one benchmarked model. Column names are an interface: only ever extend them.</summary>
[CsvRecord]
public sealed partial class BenchRow
{
    [CsvColumn("model")] public string Model { get; set; } = "";
    [CsvColumn("precision")] public string Precision { get; set; } = "";
    [CsvColumn("resolution")] public int Resolution { get; set; }
    [CsvColumn("params")] public long Params { get; set; }
    [CsvColumn("macs")] public long Macs { get; set; }
    [CsvColumn("file_bytes")] public long FileBytes { get; set; }
    [CsvColumn("load_ms")] public double LoadMs { get; set; }
    [CsvColumn("p50_ms")] public double P50Ms { get; set; }
    [CsvColumn("p90_ms")] public double P90Ms { get; set; }
    [CsvColumn("p95_ms")] public double P95Ms { get; set; }
    [CsvColumn("p99_ms")] public double P99Ms { get; set; }
    [CsvColumn("fps")] public double Fps { get; set; }
    [CsvColumn("batch8_fps")] public double Batch8Fps { get; set; }
    [CsvColumn("parity_psnr_db")] public double? ParityPsnrDb { get; set; }
    [CsvColumn("max_abs_err")] public double? MaxAbsErr { get; set; }
    [CsvColumn("psnr_db")] public double PsnrDb { get; set; }
    [CsvColumn("ssim")] public double Ssim { get; set; }
    [CsvColumn("id_cosine")] public double IdCosine { get; set; }
    [CsvColumn("perceptual_distance")] public double PerceptualDistance { get; set; }
    [CsvColumn("psnr_vs_teacher_db")] public double? PsnrVsTeacherDb { get; set; }
    [CsvColumn("threads")] public int Threads { get; set; }
    [CsvColumn("provider")] public string Provider { get; set; } = "";
    [CsvColumn("machine_peak_gmacs")] public double MachinePeakGmacs { get; set; }
    [CsvColumn("achieved_gmacs")] public double AchievedGmacs { get; set; }
    [CsvColumn("peak_rss_mb")] public double PeakRssMb { get; set; }
    // Extensions after the documented columns.
    [CsvColumn("graph_optimization")] public string GraphOptimization { get; set; } = "";
    [CsvColumn("load_in_fresh_process")] public bool LoadInFreshProcess { get; set; }
    [CsvColumn("pairs")] public int Pairs { get; set; }
    [CsvColumn("split")] public string Split { get; set; } = "";
    [CsvColumn("timestamp_utc")] public string TimestampUtc { get; set; } = "";
    /// <summary>p50 batch-1 latency of the TorchSharp reference in eager mode, same threads (with --reference).</summary>
    [CsvColumn("torch_p50_ms")] public double? TorchP50Ms { get; set; }
    /// <summary>CPU model and vector features (e.g. "AMD EPYC; avx2 fma"): INT8 speed-ups depend on VNNI.</summary>
    [CsvColumn("cpu")] public string Cpu { get; set; } = "";
    // Issue 21: the independent judge's swap metrics on the held-in pair set, crop path (the unseen set and the
    // copy-target baseline are in judge.csv beside bench.csv). Optional when read: older bench.csv files lack them.
    /// <summary>Held-in pairs the judge columns were measured on (both directions together); empty when the dataset has no two training identities with frames in the split.</summary>
    [CsvColumn("judge_pairs", Optional = true)] public int? JudgePairs { get; set; }
    /// <summary>Share of cross-identity swaps the judge calls the source's person.</summary>
    [CsvColumn("judge_source_rate", Optional = true)] public double? JudgeSourceRate { get; set; }
    /// <summary>Share the judge calls the target's person.</summary>
    [CsvColumn("judge_target_rate", Optional = true)] public double? JudgeTargetRate { get; set; }
    /// <summary>Mean judge distance of the output to the source face.</summary>
    [CsvColumn("judge_source_dist", Optional = true)] public double? JudgeSourceDist { get; set; }
    /// <summary>Mean 68-point landmark distance, output vs target, over the target's inter-ocular distance.</summary>
    [CsvColumn("landmark_nme", Optional = true)] public double? LandmarkNme { get; set; }
    /// <summary>Mean absolute change of the face region (grey levels) when the source is another identity's.</summary>
    [CsvColumn("source_sensitivity", Optional = true)] public double? SourceSensitivity { get; set; }
    /// <summary>Laplacian variance of the output's face region over the target's.</summary>
    [CsvColumn("hf_ratio", Optional = true)] public double? HfRatio { get; set; }
    /// <summary>yes/no: judge_source_rate more than 0.1 above copy-target's on the same pairs ("does not swap" otherwise); empty without held-in pairs.</summary>
    [CsvColumn("swaps", Optional = true)] public string? Swaps { get; set; }
}

/// <summary>One row of `throughput.csv`: images/s when several caller threads share one ONNX Runtime session.</summary>
[CsvRecord]
public sealed partial class ThroughputRow
{
    [CsvColumn("model")] public string Model { get; set; } = "";
    [CsvColumn("callers")] public int Callers { get; set; }
    [CsvColumn("requests")] public int Requests { get; set; }
    [CsvColumn("intra_op_threads")] public int IntraOpThreads { get; set; }
    [CsvColumn("images_per_s")] public double ImagesPerS { get; set; }
    [CsvColumn("p50_ms")] public double P50Ms { get; set; }
}

/// <summary>
/// One row of a recipe bench's `latency_by_resolution.csv`: a run's exported model re-exported at another input size
/// and timed in interleaved rounds with the others at that size.
/// </summary>
[CsvRecord]
public sealed partial class ResolutionLatencyRow
{
    [CsvColumn("resolution")] public int Resolution { get; set; }
    [CsvColumn("stage")] public string Stage { get; set; } = "";
    [CsvColumn("precision")] public string Precision { get; set; } = "";
    [CsvColumn("p50_ms")] public double P50Ms { get; set; }
    [CsvColumn("p90_ms")] public double P90Ms { get; set; }
    [CsvColumn("speedup_vs_teacher")] public double? SpeedupVsTeacher { get; set; }
    /// <summary>
    /// Smallest and largest speed-up over the repeated measurements (each a teacher/model ratio of p50s). Optional
    /// when read: files written before the repeats existed lack them.
    /// </summary>
    [CsvColumn("speedup_min", Optional = true)] public double? SpeedupMin { get; set; }
    [CsvColumn("speedup_max", Optional = true)] public double? SpeedupMax { get; set; }
    [CsvColumn("repeats", Optional = true)] public int? Repeats { get; set; }
}

/// <summary>One row of `slices.csv`: quality on one slice of the evaluation data.</summary>
[CsvRecord]
public sealed partial class SliceRow
{
    [CsvColumn("model")] public string Model { get; set; } = "";
    [CsvColumn("slice")] public string Slice { get; set; } = "";
    [CsvColumn("count")] public int Count { get; set; }
    [CsvColumn("psnr_db")] public double? PsnrDb { get; set; }
    [CsvColumn("ssim")] public double? Ssim { get; set; }
    [CsvColumn("id_cosine")] public double? IdCosine { get; set; }
}

/// <summary>Appends CsvHelper records to a CSV, writing the header only when the file is new.</summary>
public static class CsvAppend
{
    /// <summary>Appends <paramref name="rows"/> to a regular CSV file (a symlink or folder there is refused), with a header when new.</summary>
    public static void Append<T>(string path, IEnumerable<T> rows)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        AtomicFile.RequireRegularOrAbsent(Path.GetFullPath(path));
        bool exists = File.Exists(path) && new FileInfo(path).Length > 0;
        if (exists)
        {
            // Refuse to mix column sets: an older file with other columns is renamed aside, not corrupted.
            using var probe = new StringWriter();
            using (var w = CsvWriter.Create(probe)) w.WriteRecords(Array.Empty<T>());
            var header = probe.ToString().Split('\n')[0].TrimEnd('\r');
            var existing = File.ReadLines(path).First();
            if (header.Length > 0 && existing != header)
            {
                File.Move(path, path + $".old-{DateTime.UtcNow:yyyyMMddHHmmss}");
                exists = false;
            }
        }
        using var writer = AtomicFile.AppendText(path);
        using var csv = CsvWriter.Create(writer, new CsvWriterOptions { HasHeader = !exists });
        csv.WriteRecords(rows);
    }

    /// <summary>Writes <paramref name="rows"/> as a whole new CSV file (header included) through <see cref="AtomicFile"/>.</summary>
    public static void Write<T>(string path, IEnumerable<T> rows) => AtomicFile.Write(path, stream =>
    {
        using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false), 1 << 16, leaveOpen: true);
        using var csv = CsvWriter.Create(writer);
        csv.WriteRecords(rows);
    });
}
