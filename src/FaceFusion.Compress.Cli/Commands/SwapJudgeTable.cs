using System.Globalization;
using FaceFusion.Compress.Reporting;
using Spectre.Console;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>Console tables of the judge's swap metrics, one per pair set, with "does not swap" in red (shared by `ffc bench` and `ffc benchmark swap-judge`).</summary>
internal static class SwapJudgeTable
{
    public static void Write(IEnumerable<SwapJudgeRow> rows)
    {
        static string F(double? v, string f) => v is double d && double.IsFinite(d) ? d.ToString(f, CultureInfo.InvariantCulture) : "—";
        var all = rows.ToList();
        foreach (var set in all.Select(r => r.PairSet).Distinct())
        {
            var table = new Table().Title($"{set} pairs").AddColumns("model", "path", "pairs", "judge src rate", "judge tgt rate", "judge src dist", "judge tgt dist", "landmark NME", "src sensitivity", "HF ratio", "swaps?");
            foreach (var r in all.Where(r => r.PairSet == set))
                table.AddRow(Markup.Escape(r.Model), r.Path, r.Pairs.ToString(CultureInfo.InvariantCulture), F(r.JudgeSourceRate, "0.000"), F(r.JudgeTargetRate, "0.000"), F(r.JudgeSourceDist, "0.000"),
                    F(r.JudgeTargetDist, "0.000"), F(r.LandmarkNme, "0.0000"), F(r.SourceSensitivity, "0.00"), F(r.HfRatio, "0.000"), Cell(r.Swaps));
            AnsiConsole.Write(table);
        }
    }

    /// <summary>The `swaps` flag as a console cell: "no" becomes a red "does not swap".</summary>
    public static string Cell(string? swaps) => swaps == "no" ? "[red]does not swap[/]" : Markup.Escape(swaps ?? "");
}
