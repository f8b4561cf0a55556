using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Judging;
using FaceFusion.Compress.Runtime;
using Spectre.Console;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>
/// Verification accuracy of the identity judge (face-api's FaceRecognitionNet) at its 0.6 rule on the bundled
/// identities: every pair of `test` video faces (franck, the cap12/cap13 man) and every pair of still-photo faces,
/// on the dlib box of the aligned crops.
/// </summary>
internal sealed class BenchmarkJudgeCommand : Command<BenchmarkJudgeCommand.Settings>
{
    public sealed class Settings : CommandSettings
    {
        [CommandOption("--dataset <DIR>")]
        [Description("Prepared dataset folder. Default datasets/bundled.")]
        public string? Dataset { get; init; }

        [CommandOption("--per-identity <N>")]
        [Description("Test video faces per video identity, evenly spaced. Default 100.")]
        public int PerIdentity { get; init; } = 100;

        public override ValidationResult Validate() =>
            PerIdentity < 2 ? ValidationResult.Error("--per-identity must be at least 2") : ValidationResult.Success();
    }

    public override int Execute(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        var assets = AssetPaths.Locate();
        string dataDir = Workspace.Resolve(settings.Dataset ?? Workspace.BundledDataset);
        var manifestPath = Path.Combine(dataDir, FaceManifest.FileName);
        if (!File.Exists(manifestPath)) throw new FileNotFoundException($"{manifestPath}: no prepared dataset (run `ffc data prepare`)", manifestPath);
        var records = FaceManifest.Read(manifestPath);
        var (video, stills) = JudgeVerification.SelectFaces(records, settings.PerIdentity);
        if (video.Count == 0 && stills.Count == 0) throw new InvalidDataException($"{manifestPath}: no test video faces and no still-photo faces");
        using var judge = IdentityJudge.Open(assets);
        var clock = Stopwatch.StartNew();
        var videoDescriptors = JudgeVerification.DescribeRecords(judge, dataDir, video);
        var stillDescriptors = JudgeVerification.DescribeRecords(judge, dataDir, stills);
        double msPerFace = clock.Elapsed.TotalMilliseconds / Math.Max(1, video.Count + stills.Count);
        var results = new[]
        {
            JudgeVerification.Evaluate("test video faces", video.Select(r => r.Identity).ToList(), videoDescriptors),
            JudgeVerification.Evaluate("still photos", stills.Select(r => r.Identity).ToList(), stillDescriptors),
            JudgeVerification.Evaluate("both together", video.Concat(stills).Select(r => r.Identity).ToList(), videoDescriptors.Concat(stillDescriptors).ToList()),
        };
        static string F(double v, string f) => double.IsFinite(v) ? v.ToString(f, CultureInfo.InvariantCulture) : "—";
        var table = new Table()
            .Title($"identity judge (face-api FaceRecognitionNet, dlib box of the arcface_128 crops), same person when distance < {IdentityJudge.SameThreshold.ToString(CultureInfo.InvariantCulture)}")
            .AddColumns("set", "faces", "identities", "same pairs", "diff pairs", "TPR", "TNR", "accuracy", "balanced acc", "mean same dist", "mean diff dist");
        foreach (var r in results)
            table.AddRow(r.Set, r.Faces.ToString(), r.Identities.ToString(), r.SamePairs.ToString(), r.DifferentPairs.ToString(),
                F(r.Tpr, "0.000"), F(r.Tnr, "0.000"), F(r.Accuracy, "0.000"), F(r.BalancedAccuracy, "0.000"),
                F(r.MeanSameDistance, "0.000"), F(r.MeanDifferentDistance, "0.000"));
        AnsiConsole.Write(table);
        // Where the still photos' false accepts come from, by identity pair: label errors show up here too.
        var stillIds = stills.Select(r => r.Identity).ToList();
        var falseAccepts = JudgeVerification.ClosestDifferentPairs(stillIds, stillDescriptors, int.MaxValue)
            .Where(p => p.Distance < IdentityJudge.SameThreshold)
            .GroupBy(p => string.CompareOrdinal(stillIds[p.A], stillIds[p.B]) < 0 ? $"{stillIds[p.A]} – {stillIds[p.B]}" : $"{stillIds[p.B]} – {stillIds[p.A]}")
            .Select(g => $"{g.Key} {g.Count()}×, closest {g.Min(p => p.Distance).ToString("0.000", CultureInfo.InvariantCulture)}").ToList();
        AnsiConsole.WriteLine($"still-photo different-person pairs called the same person, by identity pair: {(falseAccepts.Count == 0 ? "none" : string.Join("; ", falseAccepts))}");
        AnsiConsole.WriteLine($"faces: {string.Join(", ", video.GroupBy(r => r.Identity).Select(g => $"{g.Key} {g.Count()}"))} (test split, evenly spaced); {stills.Count} still-photo faces of {stills.Select(r => r.Identity).Distinct().Count()} identities (every split); dataset {dataDir}");
        AnsiConsole.WriteLine($"judge time: {msPerFace:0.0} ms per face; CPU: {CpuInfo.Describe}");
        AnsiConsole.WriteLine("note: the group-photo faces are labelled one identity each; a person who appears in two of those photos would count as a different-person pair.");
        return 0;
    }
}
