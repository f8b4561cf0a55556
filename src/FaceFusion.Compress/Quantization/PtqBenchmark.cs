using CsvHelper;
using FaceFusion.Compress.Assets;
using System.Globalization;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Reporting;
using FaceFusion.Compress.Runtime;
using FaceFusion.Compress.Training;
using Google.Protobuf;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Quantization;

/// <summary>One row of `ptq_benchmark.csv`: one model quantized one way. Column names are an interface: only extend.</summary>
[CsvRecord]
public sealed partial class PtqBenchmarkRow
{
    [CsvColumn("model")] public string Model { get; set; } = "";
    /// <summary>fp32 (the reference), or the calibration method.</summary>
    [CsvColumn("method")] public string Method { get; set; } = "";
    /// <summary>checkpoint: the toolkit's PTQ of its own checkpoint; onnx: the PTQ of an ONNX file through the importer.</summary>
    [CsvColumn("path")] public string Path { get; set; } = "";
    /// <summary>Swapper: PSNR of the INT8 output against the FP32 output (dB) on `test` same-identity pairs.</summary>
    [CsvColumn("fidelity_db")] public double FidelityDb { get; set; } = double.NaN;
    /// <summary>Swapper: reconstruction PSNR against the target (dB).</summary>
    [CsvColumn("psnr_db")] public double PsnrDb { get; set; } = double.NaN;
    /// <summary>Recogniser: mean cosine of the INT8 embedding to the FP32 one on held-out faces.</summary>
    [CsvColumn("output_cosine")] public double OutputCosine { get; set; } = double.NaN;
    [CsvColumn("worst_sqnr_db")] public double WorstSqnrDb { get; set; } = double.NaN;
    [CsvColumn("file_bytes")] public long FileBytes { get; set; }
    /// <summary>File size over the FP32 file's.</summary>
    [CsvColumn("size_ratio")] public double SizeRatio { get; set; }
    [CsvColumn("p50_ms")] public double P50Ms { get; set; } = double.NaN;
    /// <summary>INT8 p50 over FP32 p50, interleaved rounds (median over repeats).</summary>
    [CsvColumn("latency_ratio")] public double LatencyRatio { get; set; } = double.NaN;
    /// <summary>Why a row could not be measured (empty when it was).</summary>
    [CsvColumn("note")] public string Note { get; set; } = "";
    [CsvColumn("cpu")] public string Cpu { get; set; } = "";
}

/// <summary>A floor of the PTQ benchmark and whether it held.</summary>
public sealed record PtqFloor(string Name, string Outcome, string Detail);

/// <summary>
/// `ffc benchmark ptq`: every calibration method on the kept teacher (a checkpoint) and on the bundled recogniser (an
/// ONNX file nobody here wrote), plus the teacher's FP32 export quantized through the importer (minmax, per tensor:
/// the stand-in for any third-party quantizer of the toolkit's files). Fidelity to FP32, quality, worst SQNR, size and
/// latency ratio to FP32 in interleaved rounds. Nothing is refused by the SQNR floor here: the table shows it.
/// </summary>
public static class PtqBenchmark
{
    public static readonly string[] Methods = ["minmax", "percentile", "entropy"];

    public sealed record Options
    {
        public required string Teacher { get; init; }
        public required string Recogniser { get; init; }
        public required string DataDir { get; init; }
        public required string OutputDir { get; init; }
        public int Calibration { get; init; } = 128;
        public int Pairs { get; init; } = 64;
        /// <summary>Split of the swapper's same-identity pairs.</summary>
        public string Split { get; init; } = Splits.Test;
        public int Rounds { get; init; } = 40;
        public int Repeats { get; init; } = 3;
        /// <summary>The recogniser's input normalisation (x − mean)/std on 0–255.</summary>
        public float RecogniserMean { get; init; } = 127f;
        public float RecogniserStd { get; init; } = 128f;
    }

    public static (List<PtqBenchmarkRow> Rows, List<PtqFloor> Floors) Run(Options o, IProgress<string>? status = null)
    {
        Directory.CreateDirectory(o.OutputDir);
        var rows = new List<PtqBenchmarkRow>();
        string teacherName = System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(o.Teacher));
        var fp32 = System.IO.Path.Combine(o.OutputDir, $"{teacherName}-fp32.onnx");
        var fp32Timed = System.IO.Path.Combine(o.OutputDir, $"{teacherName}-fp32-merged-heads.onnx");
        using (var model = Checkpoint.Load(o.Teacher))
        {
            model.eval();
            OnnxExporter.ExportToFile(model, fp32);
            // Latency is compared with the fastest FP32 form (merged heads); the importer path quantizes the file
            // users get (separate heads).
            OnnxExporter.ExportToFile(model, fp32Timed, new ExportOptions { MergeSiblingConvs = true });
            rows.Add(SwapperRow(teacherName, "fp32", "checkpoint", fp32, fp32, o, double.NaN, ""));
            foreach (var method in Methods)
            {
                status?.Report($"{teacherName}: {method} PTQ");
                var m = QuantizationAware.ParseMethod(method);
                var prepared = PostTrainingQuantizer.Prepare(model, PostTrainingQuantizer.Config(o.Calibration, m), o.DataDir, 1);
                using var folded = prepared.Model;
                using var simulator = prepared.Simulator;
                var path = System.IO.Path.Combine(o.OutputDir, $"{teacherName}-{method}.onnx");
                AtomicFile.WriteAllBytes(path, PostTrainingQuantizer.Export(prepared, o.Calibration, m).ToByteArray());
                var worst = QuantAnalysis.Sqnr(folded, simulator, o.DataDir).Select(r => r.SqnrDb).DefaultIfEmpty(double.NaN).Min();
                rows.Add(SwapperRow(teacherName, method, "checkpoint", path, fp32, o, worst, ""));
            }
        }
        status?.Report($"{teacherName}: its FP32 export through the importer (minmax)");
        rows.Add(ImportedSwapperRow(teacherName, fp32, o));

        string recogniserName = System.IO.Path.GetFileNameWithoutExtension(o.Recogniser);
        rows.Add(new PtqBenchmarkRow { Model = recogniserName, Method = "fp32", Path = "onnx", OutputCosine = 1, FileBytes = new FileInfo(o.Recogniser).Length, SizeRatio = 1 });
        foreach (var method in Methods)
        {
            status?.Report($"{recogniserName}: {method} PTQ");
            var config = PostTrainingQuantizer.Config(o.Calibration, QuantizationAware.ParseMethod(method));
            var result = ImportedModelQuantizer.Quantize(o.Recogniser, o.DataDir, config, "arcface", o.RecogniserMean, o.RecogniserStd);
            var path = System.IO.Path.Combine(o.OutputDir, $"{recogniserName}-{method}.onnx");
            AtomicFile.WriteAllBytes(path, result.Model.ToByteArray());
            rows.Add(new PtqBenchmarkRow
            {
                Model = recogniserName, Method = method, Path = "onnx", OutputCosine = result.OutputCosine,
                WorstSqnrDb = result.Sqnr.Select(r => r.SqnrDb).DefaultIfEmpty(double.NaN).Min(),
                FileBytes = new FileInfo(path).Length, SizeRatio = new FileInfo(path).Length / (double)new FileInfo(o.Recogniser).Length,
            });
        }

        status?.Report("latency (interleaved rounds)");
        Time(rows.Where(r => r.Model == teacherName).ToList(), r => r.Method == "fp32" ? fp32Timed : r.Path == "onnx" ? System.IO.Path.Combine(o.OutputDir, $"{teacherName}-onnx-minmax.onnx") : System.IO.Path.Combine(o.OutputDir, $"{teacherName}-{r.Method}.onnx"), o);
        Time(rows.Where(r => r.Model == recogniserName).ToList(), r => r.Method == "fp32" ? o.Recogniser : System.IO.Path.Combine(o.OutputDir, $"{recogniserName}-{r.Method}.onnx"), o);
        foreach (var r in rows) r.Cpu = CpuInfo.Describe;
        var csv = System.IO.Path.Combine(o.OutputDir, "ptq_benchmark.csv");
        File.Delete(csv);
        CsvAppend.Append(csv, rows);
        return (rows, Floors(rows, teacherName));
    }

    private static List<PtqFloor> Floors(List<PtqBenchmarkRow> rows, string teacher)
    {
        var floors = new List<PtqFloor>();
        PtqBenchmarkRow? Of(string method, string path) => rows.FirstOrDefault(r => r.Model == teacher && r.Method == method && r.Path == path && r.Note.Length == 0);
        string Db(double v) => v.ToString("0.00", CultureInfo.InvariantCulture);
        if (Of("entropy", "checkpoint") is { } entropy && Of("percentile", "checkpoint") is { } percentile)
        {
            double gap = percentile.PsnrDb - entropy.PsnrDb, fidelityGap = percentile.FidelityDb - entropy.FidelityDb;
            floors.Add(new("entropy within 1 dB of percentile (teacher)", gap <= 1 && fidelityGap <= 1 ? "met" : "NOT met",
                $"PSNR {Db(entropy.PsnrDb)} vs {Db(percentile.PsnrDb)} dB, fidelity to FP32 {Db(entropy.FidelityDb)} vs {Db(percentile.FidelityDb)} dB"));
        }
        var own = Of("minmax", "checkpoint");
        var imported = rows.FirstOrDefault(r => r.Model == teacher && r.Path == "onnx");
        if (own is not null && imported is not null)
            floors.Add(imported.Note.Length > 0
                ? new("FP32 export through the importer (minmax) within 1 dB of the default PTQ", "not measured", imported.Note)
                : new("FP32 export through the importer (minmax) within 1 dB of the default PTQ",
                    own.PsnrDb - imported.PsnrDb <= 1 && own.FidelityDb - imported.FidelityDb <= 1 ? "met" : "NOT met",
                    $"PSNR {Db(imported.PsnrDb)} vs {Db(own.PsnrDb)} dB, fidelity to FP32 {Db(imported.FidelityDb)} vs {Db(own.FidelityDb)} dB"));
        return floors;
    }

    private static PtqBenchmarkRow ImportedSwapperRow(string teacher, string fp32, Options o)
    {
        var path = System.IO.Path.Combine(o.OutputDir, $"{teacher}-onnx-minmax.onnx");
        try
        {
            var result = ImportedModelQuantizer.Quantize(fp32, o.DataDir, PostTrainingQuantizer.Config(o.Calibration, CalibrationMethod.MinMax), "swapper");
            AtomicFile.WriteAllBytes(path, result.Model.ToByteArray());
            return SwapperRow(teacher, "minmax", "onnx", path, fp32, o, result.Sqnr.Select(r => r.SqnrDb).DefaultIfEmpty(double.NaN).Min(), "");
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException)
        {
            return new PtqBenchmarkRow { Model = teacher, Method = "minmax", Path = "onnx", Note = e.Message.Replace('\n', ' ') };
        }
    }

    /// <summary>Fidelity to FP32 and PSNR to the target on `test` same-identity pairs, ONNX Runtime for both files.</summary>
    private static PtqBenchmarkRow SwapperRow(string model, string method, string pathKind, string file, string fp32, Options o, double worstSqnr, string note)
    {
        using var quantized = new OrtSwapper(file);
        using var reference = new OrtSwapper(fp32);
        using var data = new FaceSwapData(o.DataDir, o.Split, quantized.Resolution);
        var rng = new Random(1);
        var faces = Enumerable.Range(0, data.Count).OrderBy(_ => rng.Next()).Take(Math.Min(o.Pairs, data.Count)).ToArray();
        double fidelity = 0, psnr = 0;
        int r = quantized.Resolution;
        for (int start = 0; start < faces.Length; start += 8)
        {
            using var scope = NewDisposeScope();
            var t = faces.Skip(start).Take(8).ToArray();
            using var batch = data.Pairs(t, t);
            var target = batch.Target.contiguous().data<float>().ToArray();
            var source = batch.Source.contiguous().data<float>().ToArray();
            var a = tensor(quantized.Run(target, source, t.Length).Output, [t.Length, 3, r, r]).clamp(-1, 1);
            var b = tensor(reference.Run(target, source, t.Length).Output, [t.Length, 3, r, r]).clamp(-1, 1);
            fidelity += Training.ImageMetrics.Psnr(a, b).clamp_max(100).sum().item<float>();
            psnr += Training.ImageMetrics.Psnr(a, batch.Target).sum().item<float>();
        }
        long bytes = new FileInfo(file).Length;
        return new PtqBenchmarkRow
        {
            Model = model, Method = method, Path = pathKind, FidelityDb = method == "fp32" ? double.PositiveInfinity : fidelity / faces.Length,
            PsnrDb = psnr / faces.Length, WorstSqnrDb = worstSqnr, FileBytes = bytes, SizeRatio = bytes / (double)new FileInfo(fp32).Length, Note = note,
        };
    }

    private static void Time(List<PtqBenchmarkRow> rows, Func<PtqBenchmarkRow, string> fileOf, Options o)
    {
        var measured = rows.Where(r => r.Note.Length == 0).ToList();
        var times = InterleavedLatency.Measure(measured.Select(fileOf).ToList(), o.Rounds, repeats: o.Repeats);
        for (int i = 0; i < measured.Count; i++)
        {
            measured[i].P50Ms = times[i].P50Ms;
            measured[i].LatencyRatio = times[i].RatioTo(times[0]).Median;
        }
    }
}
