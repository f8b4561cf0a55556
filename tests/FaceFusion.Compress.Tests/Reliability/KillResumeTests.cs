using System.Diagnostics;
using System.Globalization;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Recipes;
using FaceFusion.Compress.Tests.Export;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Reliability;

/// <summary>
/// Real `kill -9` of the `ffc` process at seeded random points of a run, then a resume: nothing half-written is read,
/// at most one checkpoint interval is lost, and the end result equals an uninterrupted run with the same seed.
/// </summary>
public class KillResumeTests
{
    private static Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ffc.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static int LogRows(string trainLog) =>
        File.Exists(trainLog) ? File.ReadLines(trainLog).Skip(1).Count(l => l.Length > 0) : 0;

    /// <summary>Waits until the run has logged <paramref name="rows"/> steps (or ended), then kills it with SIGKILL. Returns false when it had already finished.</summary>
    private static bool KillAfter(Process process, string trainLog, int rows)
    {
        var watch = Stopwatch.StartNew();
        while (!process.HasExited && watch.Elapsed < TimeSpan.FromMinutes(3))
        {
            try { if (LogRows(trainLog) >= rows) break; } catch (IOException) { }
            Thread.Sleep(20);
        }
        if (process.HasExited) return false;
        process.Kill(); // SIGKILL on Linux: no finally blocks, no flushes
        process.WaitForExit();
        return true;
    }

    private static string LatestStep(string checkpoints) => File.ReadAllText(Path.Combine(checkpoints, "latest")).Trim();

    private static void AssertSameWeights(string modelA, string modelB, double tolerance)
    {
        using var a = Checkpoint.Load(modelA);
        using var b = Checkpoint.Load(modelB);
        var stateB = b.state_dict();
        foreach (var (key, value) in a.state_dict())
        {
            double diff = value.to_type(ScalarType.Float64).sub(stateB[key].to_type(ScalarType.Float64)).abs().max().item<double>();
            Assert.True(diff <= tolerance, $"{key}: max |Δ| {diff} after kill -9 and resume");
        }
    }

    [Fact]
    public void Training_KilledAtRandomPointsSeveralTimes_ResumesToTheUninterruptedWeights()
    {
        var root = TestAssets.TempDir();
        string Config(string output)
        {
            var path = Path.Combine(root, Path.GetFileName(output) + ".yaml");
            File.WriteAllText(path, $"""
                model: student
                resolution: 32
                data: {TinyDataset.Path}
                output: {output}
                seed: 5
                batch_size: 4
                phases:
                  - resolution: 32
                    steps: 16
                adversarial_start_step: 4
                checkpoint_every: 2
                sample_every: 100
                eval_pairs: 2
                eval_split: train
                keep_checkpoints: 2
                threads: 1
                """);
            return path;
        }
        var straight = Path.Combine(root, "straight");
        var (code, text) = Tests.Cli.CliTests.Ffc("train", "--config", Config(straight));
        Assert.True(code == 0, text);

        var killed = Path.Combine(root, "killed");
        var config = Config(killed);
        var log = Path.Combine(killed, "train_log.csv");
        var rng = new Random(11);
        int kills = 0;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            int before = LogRows(log);
            using var p = Start("train", "--config", config, "--resume");
            if (!KillAfter(p, log, before + rng.Next(2, 6))) break;
            kills++;
            // The checkpoint a resume will use is complete, and at most one interval (2 steps) behind the last logged step.
            var latest = LatestStep(Path.Combine(killed, "checkpoints"));
            Assert.True(File.Exists(Path.Combine(killed, "checkpoints", latest, "state.json")), $"{latest} is incomplete");
            int saved = int.Parse(latest["step-".Length..], CultureInfo.InvariantCulture);
            Assert.True(LogRows(log) - saved <= 2, $"killed after {LogRows(log)} logged steps, last checkpoint {saved}");
            Assert.False(Directory.Exists(Path.Combine(killed, "model")));
        }
        Assert.True(kills >= 2, $"only {kills} kills landed before the run ended");
        var (resumed, resumedText) = Tests.Cli.CliTests.Ffc("train", "--config", config, "--resume");
        Assert.True(resumed == 0, resumedText);
        // Same seed, same data order, every random draw restored: CPU math is deterministic here, so the weights agree
        // to float rounding (1e-4 allows for thread-count differences in reductions).
        AssertSameWeights(Path.Combine(straight, "model"), Path.Combine(killed, "model"), 1e-4);
        var rows = File.ReadLines(log).Skip(1).Select(l => l.Split(',')[0]).ToList();
        Assert.Equal(Enumerable.Range(1, 16).Select(i => i.ToString(CultureInfo.InvariantCulture)), rows);
    }

    [Fact]
    public void RecipeRun_KilledDuringAStage_CompletesWithTheUninterruptedMetrics()
    {
        var root = TestAssets.TempDir();
        var teacher = Path.Combine(root, "teacher");
        using (var t = ExportParityTests.Prepared(SwapperArchitectures.Teacher(32))) Checkpoint.Save(teacher, t);
        var distillConfig = Path.Combine(root, "distill.yaml");
        File.WriteAllText(distillConfig, """
            batch_size: 4
            phases:
              - resolution: 32
                steps: 12
            adversarial_start_step: 100
            checkpoint_every: 2
            sample_every: 100
            eval_pairs: 2
            threads: 1
            """);
        var recipe = Path.Combine(root, "kill.yaml");
        File.WriteAllText(recipe, $"""
            name: kill
            data: {TinyDataset.Path}
            resolution: 32
            teacher: {teacher}
            stages:
              - stage: distill
                student: student
                config: {distillConfig}
              - stage: export
              - stage: bench
                pairs: 2
                split: train
              - stage: report
            """);
        var straightArtifacts = Path.Combine(root, "straight");
        var (code, text) = Tests.Cli.CliTests.Ffc("run", recipe, "--artifacts", straightArtifacts);
        Assert.True(code == 0, text);

        var killedArtifacts = Path.Combine(root, "killed");
        var log = Path.Combine(killedArtifacts, "kill", "01-distill", "train_log.csv");
        using (var p = Start("run", recipe, "--artifacts", killedArtifacts))
            Assert.True(KillAfter(p, log, 5), "the run ended before it could be killed");
        Assert.Contains("\"running\"", File.ReadAllText(Path.Combine(killedArtifacts, "kill", "run.json")));
        var (resumed, resumedText) = Tests.Cli.CliTests.Ffc("run", recipe, "--artifacts", killedArtifacts);
        Assert.True(resumed == 0, resumedText);

        // Quality columns of the report agree (latency and load time are measurements, not results).
        string[] Quality(string artifacts) => File.ReadAllLines(Path.Combine(artifacts, "kill", "04-report", "report.csv")).Skip(1)
            .Select(l => l.Split(',')).Select(f => string.Join(',', f[0], f[3], f[4], f[9], f[10], f[11], f[12])).ToArray();
        Assert.Equal(Quality(straightArtifacts), Quality(killedArtifacts));
        AssertSameWeights(Path.Combine(straightArtifacts, "kill", "01-distill", "model"), Path.Combine(killedArtifacts, "kill", "01-distill", "model"), 1e-4);
        Assert.Contains(RunReport.Columns[0], File.ReadLines(Path.Combine(killedArtifacts, "kill", "04-report", "report.csv")).First());
    }
}
