using System.Globalization;
using System.Text;

namespace FaceFusion.Compress.Recipes;

/// <summary>One row of a run's `report.csv`, with the run it came from.</summary>
public sealed record ReportRow(string Run, string Stage, string Model, string Precision, long Params, long Macs, long FileBytes,
    double LoadMs, double P50Ms, double P95Ms, double PsnrDb, double Ssim, double? PsnrVsTeacherDb, double IdCosine)
{
    /// <summary>The judge's flag from the report's `swaps` column: "yes", "no" (does not swap), or null (not measured).</summary>
    public string? Swaps { get; init; }

    public double FileMb => FileBytes / 1048576.0;
}

/// <summary>The model `ffc recommend` picks, the reasons, and what was ruled out.</summary>
public sealed record RecommendationResult(ReportRow? Choice, string Explanation);

/// <summary>
/// Picks the best exported model of one or more recipe runs (e.g. the `quality` and `lightweight` profiles) under a
/// latency or size budget: among the models within the budget, the highest PSNR against the ground truth; ties go to
/// the higher identity cosine, then the faster model. A model the judge flags as "does not swap" is never chosen:
/// reconstruction PSNR rewards copying the target.
/// </summary>
public static class Recommendation
{
    /// <summary>The `report.csv` of a run folder: RUN/report/ (from `ffc report`) if present, else the latest report stage's.</summary>
    public static string FindReportCsv(string runDir)
    {
        if (!Directory.Exists(runDir)) throw new DirectoryNotFoundException($"{runDir}: no such run folder");
        var candidates = Directory.GetFiles(runDir, "report.csv", SearchOption.AllDirectories);
        if (candidates.Length == 0) throw new FileNotFoundException($"{runDir}: no report.csv (run the recipe's report stage or `ffc report {runDir}` first)");
        return candidates.OrderByDescending(File.GetLastWriteTimeUtc).First();
    }

    /// <summary>Reads a `report.csv`; a file with other columns or malformed numbers is refused with its name and line.</summary>
    public static List<ReportRow> Read(string csvPath, string run)
    {
        var lines = File.ReadAllLines(csvPath);
        // Reports written before the judge's columns were appended have only the legacy ones: both are read.
        int columns = lines.Length == 0 ? 0 : lines[0] == string.Join(',', RunReport.Columns) ? RunReport.Columns.Length
            : lines[0] == string.Join(',', RunReport.LegacyColumns) ? RunReport.LegacyColumns.Length : 0;
        if (columns == 0)
            throw new InvalidDataException($"{csvPath}: not a report.csv (expected the header {string.Join(',', RunReport.Columns)})");
        var rows = new List<ReportRow>();
        for (int i = 1; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            var f = lines[i].Split(',');
            if (f.Length != columns) throw new InvalidDataException($"{csvPath}:{i + 1}: {f.Length} fields, expected {columns}");
            double D(int k) => double.TryParse(f[k], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
                : f[k].Length == 0 ? double.NaN : throw new InvalidDataException($"{csvPath}:{i + 1}: '{f[k]}' is not a number ({RunReport.Columns[k]})");
            long L(int k) => long.TryParse(f[k], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
                : throw new InvalidDataException($"{csvPath}:{i + 1}: '{f[k]}' is not an integer ({RunReport.Columns[k]})");
            int swaps = columns == RunReport.Columns.Length ? Array.IndexOf(RunReport.Columns, "swaps") : -1;
            rows.Add(new ReportRow(run, f[0], f[1], f[2], L(3), L(4), L(5), D(6), D(7), D(8), D(9), D(10), f[11].Length == 0 ? null : D(11), D(12))
            {
                Swaps = swaps >= 0 && f[swaps].Length > 0 ? f[swaps] : null,
            });
        }
        return rows;
    }

    /// <summary>Chooses under <paramref name="latencyMs"/> (p50) or <paramref name="sizeMb"/> (file size); one of them must be given.</summary>
    public static RecommendationResult Choose(IReadOnlyList<ReportRow> rows, double? latencyMs, double? sizeMb)
    {
        if (latencyMs is null == sizeMb is null) throw new ArgumentException("give exactly one budget: --latency-ms X or --size-mb X");
        if (rows.Count == 0) throw new ArgumentException("no models to choose from");
        bool Fits(ReportRow r) => latencyMs is double ms ? r.P50Ms <= ms : r.FileMb <= sizeMb!.Value;
        string budget = latencyMs is double l ? string.Create(CultureInfo.InvariantCulture, $"p50 ≤ {l:0.##} ms") : string.Create(CultureInfo.InvariantCulture, $"file ≤ {sizeMb:0.##} MB");
        string Describe(ReportRow r) => string.Create(CultureInfo.InvariantCulture,
            $"{r.Run}/{r.Stage} ({r.Model}, {r.Precision}): p50 {r.P50Ms:0.00} ms, {r.FileMb:0.00} MB, PSNR {r.PsnrDb:0.00} dB, SSIM {r.Ssim:0.000}, id cos {r.IdCosine:0.000}{(r.PsnrVsTeacherDb is double t ? $", {t:0.00} dB vs teacher" : "")}");
        var swapping = rows.Where(r => r.Swaps != "no").ToList();
        var fitting = swapping.Where(Fits).OrderByDescending(r => r.PsnrDb).ThenByDescending(r => r.IdCosine).ThenBy(r => r.P50Ms).ToList();
        var text = new StringBuilder();
        void RuledOut()
        {
            foreach (var r in rows.Where(r => r.Swaps == "no"))
                text.AppendLine($"  ruled out, does not swap (the judge sees the target's person, as copying the target would): {Describe(r)}");
        }
        if (fitting.Count == 0)
        {
            if (swapping.Count == 0) text.AppendLine($"no model swaps: every one is flagged \"does not swap\" by the judge");
            else
            {
                var closest = latencyMs is not null ? swapping.MinBy(r => r.P50Ms)! : swapping.MinBy(r => r.FileBytes)!;
                text.AppendLine($"no model {(swapping.Count < rows.Count ? "that swaps " : "")}meets {budget}; the closest is {Describe(closest)}");
            }
            RuledOut();
            return new RecommendationResult(null, text.ToString().TrimEnd());
        }
        var choice = fitting[0];
        text.AppendLine($"recommended under {budget}: {Describe(choice)}");
        text.AppendLine(fitting.Count == 1
            ? "it is the only model within the budget"
            : string.Create(CultureInfo.InvariantCulture, $"it has the highest PSNR of the {fitting.Count} models within the budget (next: {fitting[1].Run}/{fitting[1].Stage}, {fitting[1].PsnrDb:0.00} dB)"));
        foreach (var r in swapping.Where(r => !Fits(r)))
            text.AppendLine($"  over budget: {Describe(r)}");
        RuledOut();
        return new RecommendationResult(choice, text.ToString().TrimEnd());
    }
}
