using System.Globalization;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Recipes;
using FaceFusion.Compress.Tests.Cli;
using FaceFusion.Compress.Tests.Export;

namespace FaceFusion.Compress.Tests.Recipes;

public class RecipeTests
{
    [Fact]
    public void ThreeMistakes_AreAllReportedWithLines_AndExitCodeTwo()
    {
        var path = Path.Combine(TestAssets.TempDir(), "bad.yaml");
        File.WriteAllText(path, """
            name: bad
            teacher: somewhere
            stages:
              - stage: prune
                target_macs: 0.5
                finetune_steps: many
              - stage: ptq
                calibrations: 8
              - stage: bake
            """);
        var e = Assert.Throws<RecipeException>(() => RecipeParser.Load(path));
        Assert.Equal(3, e.Errors.Count);
        Assert.Contains(e.Errors, x => x.Line == 6 && x.Message.Contains("finetune_steps") && x.Message.Contains("integer"));
        Assert.Contains(e.Errors, x => x.Line == 8 && x.Message.Contains("unknown key 'calibrations'"));
        Assert.Contains(e.Errors, x => x.Line == 9 && x.Message.Contains("stage needs 'stage:'"));
        var (code, output) = CliTests.Ffc("run", path);
        Assert.Equal(2, code);
        Assert.Contains($"{path}:6:", output);
        Assert.Contains($"{path}:8:", output);
        Assert.Contains($"{path}:9:", output);
    }

    [Fact]
    public void MissingInputsAndImpossibleBudgets_AreReportedAtTheirLines_BeforeAnyWork()
    {
        var dir = TestAssets.TempDir();
        var path = Path.Combine(dir, "inputs.yaml");
        File.WriteAllText(path, $"""
            name: inputs
            data: {dir}
            teacher: no-such-teacher
            stages:
              - stage: prune
                target_macs: 1.5
                max_drop_db: -1
              - stage: distill
                config: no-such-config.yaml
              - stage: prune
                target_params: lots
              - stage: bench
                latency_repeats: 0
            profiles:
              lightweight:
                prune.target_macs: 0
            """);
        var e = Assert.Throws<RecipeException>(() => RecipeParser.Load(path, "lightweight", rootDir: dir));
        Assert.Contains(e.Errors, x => x.Line == 2 && x.Message.Contains("not a prepared dataset"));
        Assert.Contains(e.Errors, x => x.Line == 3 && x.Message.Contains("teacher: 'no-such-teacher' not found"));
        Assert.Contains(e.Errors, x => x.Line == 6 && x.Message.Contains("1.5 is impossible"));
        Assert.Contains(e.Errors, x => x.Line == 7 && x.Message.Contains("cannot be negative"));
        Assert.Contains(e.Errors, x => x.Line == 9 && x.Message.Contains("'config': 'no-such-config.yaml' not found"));
        Assert.Contains(e.Errors, x => x.Line == 11 && x.Message.Contains("target 'lots'"));
        Assert.Contains(e.Errors, x => x.Line == 13 && x.Message.Contains("at least one repeat"));
        Assert.Contains(e.Errors, x => x.Line == 16 && x.Message.Contains("profile 'lightweight'"));
        Assert.Equal(8, e.Errors.Count);
        // Without a root (e.g. re-reading a finished run's recipe for its report) only the recipe itself is checked.
        Assert.Equal(5, Assert.Throws<RecipeException>(() => RecipeParser.Load(path, "lightweight")).Errors.Count);

        // The CLI checks inputs against the repository (and a --teacher override too), exit code 2.
        File.WriteAllText(path, $"name: inputs\ndata: {TinyDataset.Path}\nstages:\n  - stage: export\n");
        var (code, output) = CliTests.Ffc("run", path, "--teacher", "no/such/teacher", "--dry-run");
        Assert.Equal(2, code);
        Assert.Contains("--teacher: 'no/such/teacher' not found", output);
        Assert.Contains("no teacher", CliTests.Ffc("run", path, "--dry-run").Output);
    }

    [Fact]
    public void ShippedRecipes_ParseWithEveryProfile()
    {
        var recipes = Path.Combine(FaceFusion.Compress.Assets.AssetPaths.FindRepositoryRoot()!, "recipes");
        var files = Directory.GetFiles(recipes, "*.yaml").Where(f => File.ReadLines(f).Any(l => l.StartsWith("stages:"))).ToList();
        Assert.Contains(files, f => f.EndsWith("facefusion-lite.yaml"));
        foreach (var file in files)
        {
            var recipe = RecipeParser.Load(file);
            foreach (var profile in recipe.Profiles) Assert.Equal(profile, RecipeParser.Load(file, profile).Profile);
        }
    }

    [Fact]
    public void FinetuneStage_TrainsTheCurrentModel_AndItIsWhatLaterStagesExport()
    {
        var dir = TestAssets.TempDir();
        var teacher = Path.Combine(dir, "teacher");
        using (var t = ExportParityTests.Prepared(SwapperArchitectures.Student(32))) Checkpoint.Save(teacher, t);
        var path = Path.Combine(dir, "finetune.yaml");
        File.WriteAllText(path, $"name: finetune\ndata: {TinyDataset.Path}\nresolution: 32\nteacher: {teacher}\nstages:\n  - stage: finetune\n    steps: 2\n    lr: 0.001\n  - stage: export\n");
        var runner = new RecipeRunner(RecipeParser.Load(path, rootDir: dir), TestAssets.Assets, TestAssets.TempDir());
        var records = runner.Run();
        Assert.All(records, r => Assert.Equal("done", r.Status));
        Assert.True(File.Exists(Path.Combine(runner.RunDir, "01-finetune", "train_log.csv")));
        var exported = records[1].Outputs;
        Assert.Contains("onnx:finetuned", exported.Keys);
        Assert.Contains("onnx:teacher", exported.Keys);
        // Fine-tuning changed the weights: the exported files differ.
        Assert.NotEqual(File.ReadAllBytes(exported["onnx:teacher"]), File.ReadAllBytes(exported["onnx:finetuned"]));
    }

    [Fact]
    public void OnnxTeacher_IsBenchmarkedAsGiven_SoTheReportHasItsRowAndSpeedups()
    {
        var dir = TestAssets.TempDir();
        var teacher = Path.Combine(dir, "teacher.onnx");
        using (var t = ExportParityTests.Prepared(SwapperArchitectures.Teacher(32))) OnnxExporter.ExportToFile(t, teacher);
        var path = Path.Combine(dir, "onnx-teacher.yaml");
        File.WriteAllText(path, $"name: onnx-teacher\ndata: {TinyDataset.Path}\nresolution: 32\nteacher: {teacher}\nstages:\n  - stage: distill\n    student: student\n    steps: 2\n  - stage: export\n  - stage: bench\n    pairs: 2\n    split: train\n  - stage: report\n");
        var runner = new RecipeRunner(RecipeParser.Load(path, rootDir: dir), TestAssets.Assets, TestAssets.TempDir());
        var records = runner.Run();
        Assert.All(records, r => Assert.Equal("done", r.Status));
        Assert.Equal(teacher, records[1].Outputs["onnx:teacher"]);
        var report = File.ReadAllLines(Path.Combine(runner.RunDir, "04-report", "report.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(["distilled", "teacher"], report.Select(r => r[0]).Order(StringComparer.Ordinal));
        var distilled = report.Single(r => r[0] == "distilled");
        Assert.NotEqual("", distilled[11]); // psnr_vs_teacher_db: measured against the ONNX teacher
        var latency = File.ReadAllLines(Path.Combine(runner.RunDir, "03-bench", "latency_by_resolution.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.All(latency, r => Assert.NotEqual("", r[5])); // every model has its speed-up against the teacher
    }

    [Fact]
    public void Report_HasTheJudgesColumns_ACopyTargetRow_AndFlagsATeacherThatCopiesItsTarget()
    {
        var dir = TestAssets.TempDir();
        var teacher = BenchTests.CopyTargetModel(dir, 64);
        var path = Path.Combine(dir, "copy-teacher.yaml");
        File.WriteAllText(path, $"name: copy-teacher\ndata: {TinyDataset.Path}\nresolution: 64\nteacher: {teacher}\nstages:\n  - stage: export\n  - stage: bench\n    pairs: 2\n    judge_pairs: 2\n    split: train\n    latency_rounds: 2\n    latency_repeats: 1\n  - stage: report\n");
        var root = TestAssets.TempDir();
        var runner = new RecipeRunner(RecipeParser.Load(path, rootDir: dir), TestAssets.Assets, root);
        var records = runner.Run();
        Assert.All(records, r => Assert.Equal("done", r.Status));
        var reportDir = Path.Combine(runner.RunDir, "03-report");
        var csv = File.ReadAllLines(Path.Combine(reportDir, "report.csv"));
        Assert.Equal(string.Join(',', RunReport.Columns), csv[0]);
        Assert.Equal(RunReport.LegacyColumns, RunReport.Columns.Take(RunReport.LegacyColumns.Length)); // only appended
        var row = Assert.Single(csv.Skip(1)).Split(',');
        Assert.Equal("teacher", row[0]);
        Assert.Equal("2", row[Array.IndexOf(RunReport.Columns, "judge_pairs")]);
        Assert.Equal("no", row[Array.IndexOf(RunReport.Columns, "swaps")]);
        Assert.Equal("0", row[Array.IndexOf(RunReport.Columns, "source_sensitivity")]);
        var md = File.ReadAllText(Path.Combine(reportDir, "report.md"));
        Assert.Contains("| copy-target | copy-target | held_in | 2 |", md);
        Assert.Contains("| teacher | copies-its-target | held_in | 2 |", md);
        Assert.Contains("**does not swap**", md);
        var judge = File.ReadAllLines(Path.Combine(reportDir, "judge.csv"));
        // header, then copy-target and the teacher on the held-in set (no stills: no unseen set), on the crop and through
        // the whole swap path
        Assert.Equal(5, judge.Length);
        Assert.Equal(2, judge.Count(l => l.Contains(",full_frame,")));
        // `ffc report` on the finished run restores the judge rows from the bench stage: the same table.
        var (again, _) = RecipeRunner.Report(runner.RunDir, TestAssets.Assets, root, TestAssets.TempDir());
        Assert.Contains("| copy-target | copy-target | held_in | 2 |", File.ReadAllText(again));
        // Recommendation reads the extended report.csv and one written before the judge's columns.
        Assert.Single(Recommendation.Read(Path.Combine(reportDir, "report.csv"), "r"));
        var legacy = Path.Combine(TestAssets.TempDir(), "report.csv");
        File.WriteAllLines(legacy, [string.Join(',', RunReport.LegacyColumns), string.Join(',', row.Take(RunReport.LegacyColumns.Length))]);
        Assert.Equal("teacher", Assert.Single(Recommendation.Read(legacy, "old")).Stage);
        // Fewer than one pair per direction is refused at its line, before any work.
        var bad = Path.Combine(dir, "bad-judge.yaml");
        File.WriteAllText(bad, $"name: bad\ndata: {TinyDataset.Path}\nstages:\n  - stage: bench\n    judge_pairs: 1\n");
        Assert.Contains(Assert.Throws<RecipeException>(() => RecipeParser.Load(bad, rootDir: dir)).Errors, x => x.Line == 5 && x.Message.Contains("at least 2"));
    }

    [Fact]
    public void ParetoFront_KeepsOnlyModelsNoOtherBeatsOnBothAxes()
    {
        var front = RunReport.ParetoFront([
            ("teacher", 35.0, 37.3), ("pruned", 12.0, 38.4), ("distilled", 12.3, 38.7), ("int8", 26.0, 39.7),
            ("worse", 30.0, 36.0), ("no-latency", double.NaN, 50.0), ("fastest", 5.0, 32.0)]);
        Assert.Equal(["fastest", "pruned", "distilled", "int8"], front);
    }

    [Fact]
    public void EveryDocumentedKey_RoundTrips()
    {
        var lines = new List<string> { "name: all", "data: d", "resolution: 64", "seed: 3", "teacher: t", "stages:" };
        var sample = new Dictionary<string, string> { ["int"] = "7", ["double"] = "0.25", ["bool"] = "false", ["list"] = "0.1,0.5", ["int list"] = "256,512", ["string"] = "0.5", ["path"] = "x/y.yaml" };
        foreach (var (kind, keys) in RecipeSchema.Stages)
        {
            lines.Add($"  - stage: {kind}");
            foreach (var (key, spec) in keys)
                if (!(kind == "prune" && key is "target_params" or "target_latency_ms")) lines.Add($"    {key}: {Sample(spec)}");
        }
        var path = Path.Combine(TestAssets.TempDir(), "all.yaml");
        File.WriteAllLines(path, lines);
        var recipe = RecipeParser.Load(path);
        Assert.Equal(("all", "d", 64, 3, "t"), (recipe.Name, recipe.Data, recipe.Resolution, recipe.Seed, recipe.Teacher));
        foreach (var stage in recipe.Stages)
            foreach (var (key, spec) in RecipeSchema.Stages[stage.Kind])
                if (!(stage.Kind == "prune" && key is "target_params" or "target_latency_ms"))
                    Assert.Equal(Sample(spec), stage.Parameters[key]);
        string Sample(RecipeSchema.Key spec) => spec.Choices?[^1] ?? sample[spec.Type];

        // …and every key is documented in recipes/README.md.
        var readme = File.ReadAllText(Path.Combine(FaceFusion.Compress.Assets.AssetPaths.FindRepositoryRoot()!, "recipes", "README.md"));
        foreach (var key in RecipeSchema.TopLevel.Keys.Concat(RecipeSchema.Stages.Values.SelectMany(k => k.Keys)).Concat(RecipeSchema.Targets.Keys))
            Assert.Contains($"`{key}`", readme);
    }

    [Fact]
    public void Targets_AreReadFromTheRecipe_CheckedForSense_AndUsedByTheReport()
    {
        var dir = TestAssets.TempDir();
        var path = Path.Combine(dir, "targets.yaml");
        File.WriteAllText(path, "teacher: t\ntargets:\n  speedup: 3\n  max_psnr_drop_db: 0.5\nstages:\n  - stage: report\n");
        var recipe = RecipeParser.Load(path);
        Assert.Equal(new ReportTargets(0.10, 3, 0.5, 0.02), recipe.EffectiveTargets);
        Assert.Equal(new ReportTargets(), RecipeParser.Load(Write("plain.yaml", "teacher: t\nstages:\n  - stage: report\n")).EffectiveTargets);

        var e = Assert.Throws<RecipeException>(() => RecipeParser.Load(Write("bad.yaml",
            "teacher: t\ntargets:\n  speedup: fast\n  file_fraction: 2\n  latency: 3\n  max_id_drop: -0.1\nstages:\n  - stage: report\n")));
        Assert.Equal(4, e.Errors.Count);
        Assert.Contains(e.Errors, x => x.Line == 3 && x.Message.Contains("must be a number"));
        Assert.Contains(e.Errors, x => x.Line == 4 && x.Message.Contains("2 is impossible"));
        Assert.Contains(e.Errors, x => x.Line == 5 && x.Message.Contains("unknown target 'latency'"));
        Assert.Contains(e.Errors, x => x.Line == 6 && x.Message.Contains("cannot be negative"));

        // A profile sets its own bar over the recipe's targets (the rest kept); without the profile the recipe's stand.
        var profiled = Write("profiled.yaml", "teacher: t\ntargets:\n  speedup: 3\nstages:\n  - stage: report\nprofiles:\n  strict:\n    targets.speedup: 8\n    targets.max_id_drop: 0.01\n");
        Assert.Equal(new ReportTargets(0.10, 8, 1.0, 0.01), RecipeParser.Load(profiled, profile: "strict").EffectiveTargets);
        Assert.Equal(new ReportTargets(0.10, 3, 1.0, 0.02), RecipeParser.Load(profiled).EffectiveTargets);
        Assert.Equal(new ReportTargets(0.10, 6, 1.0, 0.02), RecipeParser.Load(Write("profile-only.yaml",
            "teacher: t\nstages:\n  - stage: report\nprofiles:\n  quick:\n    targets.speedup: 6\n"), profile: "quick").EffectiveTargets);
        var badProfile = Assert.Throws<RecipeException>(() => RecipeParser.Load(Write("bad-profile.yaml",
            "teacher: t\nstages:\n  - stage: report\nprofiles:\n  p:\n    targets.speedup: -2\n    targets.latency: 3\n"), profile: "p"));
        Assert.Equal(2, badProfile.Errors.Count);
        Assert.Contains(badProfile.Errors, x => x.Line == 6 && x.Message.Contains("-2 is impossible"));
        Assert.Contains(badProfile.Errors, x => x.Line == 7 && x.Message.Contains("unknown target 'latency'"));

        // The same bench judged by the default targets and by the recipe's: 4× and 0.8 dB fail one and pass the other.
        var rows = new List<(string, FaceFusion.Compress.Reporting.BenchRow)>
        {
            ("teacher", new() { Model = "teacher", Precision = "fp32", Resolution = 128, FileBytes = 1000, P50Ms = 40, PsnrDb = 37, IdCosine = 0.5 }),
            ("int8", new() { Model = "int8", Precision = "int8", Resolution = 128, FileBytes = 50, P50Ms = 10, PsnrDb = 36.2, IdCosine = 0.49 }),
        };
        var byDefault = string.Join("\n", RunReport.Targets(rows));
        Assert.Contains("p50 speed-up 4.00× at 128 px (target ≥ 5×): **not met**", byDefault);
        Assert.Contains("PSNR drop 0.80 dB (target ≤ 1.0 dB): met", byDefault);
        var byRecipe = string.Join("\n", RunReport.Targets(rows, null, recipe.EffectiveTargets));
        Assert.Contains("p50 speed-up 4.00× at 128 px (target ≥ 3×): met", byRecipe);
        Assert.Contains("PSNR drop 0.80 dB (target ≤ 0.5 dB): **not met**", byRecipe);

        string Write(string name, string text)
        {
            var file = Path.Combine(dir, name);
            File.WriteAllText(file, text);
            return file;
        }
    }

    [Fact]
    public void ValuesOutsideAKeysChoices_AreErrorsWithTheirLine()
    {
        var path = Path.Combine(TestAssets.TempDir(), "choices.yaml");
        File.WriteAllText(path, "teacher: t\nstages:\n  - stage: qat\n    observer: sometimes\n  - stage: ptq\n    method: magic\n");
        var e = Assert.Throws<RecipeException>(() => RecipeParser.Load(path));
        Assert.Contains(e.Errors, x => x.Line == 4 && x.Message.Contains("moving_average"));
        Assert.Contains(e.Errors, x => x.Line == 6 && x.Message.Contains("entropy"));
    }

    [Fact]
    public void Profiles_OverrideStageKeys_AndUnknownProfilesAreErrors()
    {
        var path = Path.Combine(TestAssets.TempDir(), "p.yaml");
        File.WriteAllText(path, "teacher: t\nstages:\n  - stage: prune\n    target_macs: 0.8\nprofiles:\n  lightweight:\n    prune.target_macs: 0.4\n");
        Assert.Equal("0.4", RecipeParser.Load(path, "lightweight").Stages[0].Parameters["target_macs"]);
        Assert.Equal("0.8", RecipeParser.Load(path).Stages[0].Parameters["target_macs"]);
        var e = Assert.Throws<RecipeException>(() => RecipeParser.Load(path, "turbo"));
        Assert.Contains("turbo", e.Message);
    }

    [Fact]
    public void DryRun_DoesNoWork()
    {
        var dir = TestAssets.TempDir();
        var path = Path.Combine(dir, "dry.yaml");
        File.WriteAllText(path, $"name: dry-{Guid.NewGuid():N}\ndata: {TinyDataset.Path}\nresolution: 64\nstages:\n  - stage: train\n    config: recipes/teacher-quick.yaml\n  - stage: prune\n    target_macs: 0.5\n  - stage: export\n");
        var (code, output) = CliTests.Ffc("run", path, "--dry-run");
        Assert.True(code == 0, output);
        Assert.Contains("01-train", output);
        Assert.Contains("02-prune", output);
        Assert.Contains("MACs ≤", output);
        // Stages after a prune show the target's bound, not the unpruned size.
        Assert.Contains("03-export:  [MACs ≤", output.Replace("\r", ""));
        var name = File.ReadLines(path).First()["name: ".Length..];
        Assert.False(Directory.Exists(Path.Combine(FaceFusion.Compress.Assets.AssetPaths.FindRepositoryRoot()!, "artifacts", name)));
    }

    [Fact]
    public void TinyClosedLoop_RunsEveryStage_AndAReRunSkipsThem()
    {
        var dir = TestAssets.TempDir();
        var teacher = Path.Combine(dir, "teacher");
        using (var t = ExportParityTests.Prepared(SwapperArchitectures.Teacher(32))) Checkpoint.Save(teacher, t);
        var path = Path.Combine(dir, "tiny.yaml");
        File.WriteAllText(path, $"""
            name: tiny
            data: {TinyDataset.Path}
            resolution: 32
            teacher: {teacher}
            stages:
              - stage: prune
                target_macs: 0.9
                finetune_steps: 1
                max_drop_db: 100
              - stage: distill
                student: student
                steps: 2
              - stage: ptq
                calibration: 4
                min_sqnr_db: 0 # an untrained tiny network: its quantization noise is large by nature
              - stage: qat
                steps: 2
                calibration: 4
                min_sqnr_db: 0
              - stage: export
              - stage: bench
                pairs: 2
                judge_pairs: 4
                split: train
                resolutions: [64]
                latency_rounds: 10
                latency_repeats: 3
              - stage: report
            """);
        var recipe = RecipeParser.Load(path);
        var root = TestAssets.TempDir();
        var runner = new RecipeRunner(recipe, TestAssets.Assets, root) { StageTimeSaveInterval = TimeSpan.Zero };
        // While a stage runs, run.json says so and holds its time so far (what an interrupted stage resumes from),
        // written from the stage's own progress on this thread.
        var whileRunning = new List<StageRecord>();
        var records = runner.Run(line =>
        {
            if (!line.StartsWith("  prune step 1:")) return;
            var manifest = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(runner.RunDir, "run.json")));
            whileRunning.AddRange(manifest.RootElement.GetProperty("stages").EnumerateArray()
                .Select(s => new StageRecord { Name = s.GetProperty("name").GetString()!, Status = s.GetProperty("status").GetString()!, Seconds = s.GetProperty("seconds").GetDouble() }));
        });
        var pruneWhileRunning = Assert.Single(whileRunning);
        Assert.Equal(("01-prune", "running"), (pruneWhileRunning.Name, pruneWhileRunning.Status));
        Assert.True(pruneWhileRunning.Seconds > 0);
        Assert.Equal(["01-prune", "02-distill", "03-ptq", "04-qat", "05-export", "06-bench", "07-report"], records.Select(r => r.Name));
        Assert.All(records, r => Assert.Equal("done", r.Status));
        var report = File.ReadAllLines(Path.Combine(runner.RunDir, "07-report", "report.csv"));
        Assert.Equal(string.Join(',', RunReport.Columns), report[0]);
        var stages = report.Skip(1).Select(l => l.Split(',')[0]).ToList();
        Assert.Contains("teacher", stages);
        Assert.Contains("pruned", stages);
        Assert.Contains("distilled", stages);
        Assert.Contains("int8", stages);
        Assert.Contains("int8-ptq", stages);
        // Every stage judged on the same 4 held-in pairs, beside one copy-target measurement reused for all of them.
        int judgePairs = Array.IndexOf(RunReport.Columns, "judge_pairs");
        Assert.All(report.Skip(1), l => Assert.Equal("4", l.Split(',')[judgePairs]));
        var benchJudge = File.ReadAllLines(Path.Combine(runner.RunDir, "06-bench", "judge.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        foreach (var judgedPath in new[] { "crop", "full_frame" })
        {
            var copies = benchJudge.Where(f => f[0] == "copy-target" && f[2] == judgedPath).ToList();
            Assert.Equal(stages.Count, copies.Count);
            Assert.Single(copies.Select(f => string.Join(',', f.Skip(4).Take(8))).Distinct());
        }
        Assert.True(File.Exists(Path.Combine(runner.RunDir, "04-qat", "quant_sqnr.csv")));
        Assert.True(File.Exists(Path.Combine(runner.RunDir, "run.json")));
        // Every FP32 and INT8 model re-exported at 64 px and timed there; the report states the 64-px speed-up.
        var latency = File.ReadAllLines(Path.Combine(runner.RunDir, "06-bench", "latency_by_resolution.csv"));
        Assert.Equal("resolution,stage,precision,p50_ms,p90_ms,speedup_vs_teacher,speedup_min,speedup_max,repeats", latency[0]);
        var latencyRows = latency.Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(stages.Order(), latencyRows.Where(r => r[0] == "64").Select(r => r[1]).Order());
        Assert.Equal(stages.Order(), latencyRows.Where(r => r[0] == "32").Select(r => r[1]).Order()); // the run's own size, interleaved
        Assert.All(latencyRows, r => Assert.Contains(r[0], new[] { "32", "64" }));
        Assert.Contains(latencyRows, r => r[1] == "int8" && r[2] == "int8");
        Assert.All(latencyRows.Where(r => r[1] == "teacher"), r => Assert.Equal("1", r[5]));
        // The speed-up comes with its spread over the repeats, which brackets it.
        Assert.All(latencyRows, r => Assert.True(double.Parse(r[6], CultureInfo.InvariantCulture) <= double.Parse(r[5], CultureInfo.InvariantCulture)
            && double.Parse(r[5], CultureInfo.InvariantCulture) <= double.Parse(r[7], CultureInfo.InvariantCulture) && r[8] == "3", string.Join(',', r)));
        using (var at64 = new FaceFusion.Compress.Runtime.OrtSwapper(Path.Combine(runner.RunDir, "06-bench", "latency-64", "int8.onnx"))) Assert.Equal(64, at64.Resolution);
        var reportLines = File.ReadAllLines(Path.Combine(runner.RunDir, "07-report", "report.md"));
        Assert.Single(reportLines, l => l.Contains("speed-up") && l.Contains("at 64 px, interleaved timing (3 repeats: ") && !l.Contains("bench table"));
        Assert.Single(reportLines, l => l.Contains("speed-up") && l.Contains("at 32 px, interleaved timing (3 repeats: ") && l.Contains("(bench table:"));

        var log = new List<string>();
        new RecipeRunner(recipe, TestAssets.Assets, root).Run(log.Add);
        Assert.Equal(7, log.Count(l => l.Contains("skipped")));

        // `ffc report RUN` rebuilds the same table from run.json alone; `ffc recommend` reads it.
        var (md, csv) = RecipeRunner.Report(runner.RunDir, TestAssets.Assets, root);
        Assert.Equal(report, File.ReadAllLines(csv));
        Assert.Contains("Targets, teacher FP32", File.ReadAllText(md));
        // The report folder stands alone: every image it shows lies inside it.
        var elsewhere = RecipeRunner.Report(runner.RunDir, TestAssets.Assets, root, TestAssets.TempDir()).Markdown;
        var images = System.Text.RegularExpressions.Regex.Matches(File.ReadAllText(elsewhere), @"!\[[^\]]*\]\(([^)]+)\)").Select(m => m.Groups[1].Value).ToList();
        Assert.Contains(images, i => i.Contains("prune_psnr_vs_macs"));
        Assert.Contains(images, i => i.Contains("step-"));
        Assert.All(images, i => Assert.True(!i.Contains("..") && File.Exists(Path.Combine(Path.GetDirectoryName(elsewhere)!, i)), i));
        var rows = Recommendation.Read(csv, "tiny");
        var best = Recommendation.Choose(rows, latencyMs: 1e6, sizeMb: null);
        // The tiny models are barely trained: the judge may flag them as not swapping, and those are never chosen.
        var swapping = rows.Where(r => r.Swaps != "no").ToList();
        if (swapping.Count == 0) Assert.Null(best.Choice);
        else Assert.Equal(swapping.Max(r => r.PsnrDb), best.Choice!.PsnrDb);
        var (code, text) = CliTests.Ffc("recommend", runner.RunDir, "--size-mb", "0.000001");
        Assert.Equal(3, code);
        Assert.Contains(swapping.Count == 0 ? "no model swaps" : swapping.Count < rows.Count ? "no model that swaps meets file ≤" : "no model meets file ≤", text);
        var (both, bothText) = CliTests.Ffc("recommend", runner.RunDir, "--size-mb", "1", "--latency-ms", "1");
        Assert.NotEqual(0, both);
        Assert.Contains("exactly one budget", bothText);
    }

    [Fact]
    public void ChangedStageParameters_RunThatStageAndLaterOnesAgain()
    {
        var dir = TestAssets.TempDir();
        var teacher = Path.Combine(dir, "teacher");
        using (var t = ExportParityTests.Prepared(SwapperArchitectures.Student(32))) Checkpoint.Save(teacher, t);
        var path = Path.Combine(dir, "change.yaml");
        string Recipe(int calibration) => $"name: change\ndata: {TinyDataset.Path}\nresolution: 32\nteacher: {teacher}\nstages:\n  - stage: ptq\n    calibration: {calibration}\n    min_sqnr_db: 0\n  - stage: export\n";
        File.WriteAllText(path, Recipe(2));
        var root = TestAssets.TempDir();
        new RecipeRunner(RecipeParser.Load(path), TestAssets.Assets, root).Run();
        var log = new List<string>();
        new RecipeRunner(RecipeParser.Load(path), TestAssets.Assets, root).Run(log.Add);
        Assert.Equal(2, log.Count(l => l.Contains("skipped")));
        File.WriteAllText(path, Recipe(3));
        // Anything a later stage left (checkpoints of a training stage) belongs to the old inputs: it must not be resumed.
        var runDir = new RecipeRunner(RecipeParser.Load(path), TestAssets.Assets, root).RunDir;
        var stale = Path.Combine(runDir, "02-export", "checkpoints", "latest");
        Directory.CreateDirectory(Path.GetDirectoryName(stale)!);
        File.WriteAllText(stale, "step-000100");
        log.Clear();
        new RecipeRunner(RecipeParser.Load(path), TestAssets.Assets, root).Run(log.Add);
        Assert.Contains(log, l => l.StartsWith("01-ptq: parameters changed"));
        Assert.DoesNotContain(log, l => l.Contains("skipped")); // export read the old ptq's outputs: it runs again too
        Assert.False(File.Exists(stale));

        // --rerun: a finished stage (by folder name or kind) runs again from scratch, earlier ones are skipped.
        log.Clear();
        new RecipeRunner(RecipeParser.Load(path), TestAssets.Assets, root).Run(log.Add, rerunFrom: "export");
        Assert.Contains(log, l => l.StartsWith("01-ptq: done earlier"));
        Assert.Contains(log, l => l.StartsWith("02-export: run again from scratch"));
        var e = Assert.Throws<ArgumentException>(() => new RecipeRunner(RecipeParser.Load(path), TestAssets.Assets, root).Run(log.Add, rerunFrom: "03-bench"));
        Assert.Contains("stages: 01-ptq, 02-export", e.Message);
        var (code, text) = CliTests.Ffc("run", path, "--rerun", "train");
        Assert.Equal(2, code);
        Assert.Contains("no stage 'train'", text);

        // A shared input (here the seed; equally the teacher or the data) changed: no stage's outputs are reused.
        File.WriteAllText(path, Recipe(3).Replace("resolution: 32\n", "resolution: 32\nseed: 9\n"));
        log.Clear();
        new RecipeRunner(RecipeParser.Load(path), TestAssets.Assets, root).Run(log.Add);
        Assert.Contains(log, l => l.StartsWith("inputs changed since the last run"));
        Assert.DoesNotContain(log, l => l.Contains("skipped"));
        log.Clear();
        new RecipeRunner(RecipeParser.Load(path), TestAssets.Assets, root).Run(log.Add);
        Assert.Equal(2, log.Count(l => l.Contains("skipped")));
        var manifest = File.ReadAllText(Path.Combine(runDir, "run.json"));
        Assert.Contains("\"recipe_text\"", manifest);
        Assert.Contains("TorchSharp 0.107", manifest);
    }

    [Fact]
    public void EditedStageConfigFile_RunsThatStageAgain()
    {
        // The recipe text is unchanged; only the file its distill stage names changes.
        var dir = TestAssets.TempDir();
        var teacher = Path.Combine(dir, "teacher");
        using (var t = ExportParityTests.Prepared(SwapperArchitectures.Student(32))) Checkpoint.Save(teacher, t);
        var config = Path.Combine(dir, "distill.yaml");
        string Config(int batch) => $"model: student\nbatch_size: {batch}\nphases:\n  - resolution: 32\n    steps: 1\neval_pairs: 2\ncheckpoint_every: 1\nsample_every: 100\n";
        File.WriteAllText(config, Config(2));
        var path = Path.Combine(dir, "edited.yaml");
        File.WriteAllText(path, $"name: edited\ndata: {TinyDataset.Path}\nresolution: 32\nteacher: {teacher}\nstages:\n  - stage: distill\n    student: student\n    config: {config}\n");
        var root = TestAssets.TempDir();
        new RecipeRunner(RecipeParser.Load(path), TestAssets.Assets, root).Run();
        var log = new List<string>();
        new RecipeRunner(RecipeParser.Load(path), TestAssets.Assets, root).Run(log.Add);
        Assert.Contains(log, l => l.StartsWith("01-distill: done earlier"));
        File.WriteAllText(config, Config(3));
        log.Clear();
        new RecipeRunner(RecipeParser.Load(path), TestAssets.Assets, root).Run(log.Add);
        Assert.Contains(log, l => l.StartsWith("01-distill: parameters changed"));
    }

    [Fact]
    public void ReuseFrom_CopiesTheSharedLeadingStages_OfAnotherProfilesRun_AndRefusesOtherInputs()
    {
        var dir = TestAssets.TempDir();
        var teacher = Path.Combine(dir, "teacher");
        using (var t = ExportParityTests.Prepared(SwapperArchitectures.Teacher(32))) Checkpoint.Save(teacher, t);
        string Recipe(int seed) => $"name: shared\ndata: {TinyDataset.Path}\nresolution: 32\nseed: {seed}\nteacher: {teacher}\nstages:\n"
            + "  - stage: prune\n    target_macs: 0.9\n    finetune_steps: 1\n    max_drop_db: 100\n"
            + "  - stage: distill\n    steps: 1\nprofiles:\n  one:\n    distill.steps: 1\n  two:\n    distill.steps: 2\n";
        var path = Path.Combine(dir, "shared.yaml");
        File.WriteAllText(path, Recipe(1));
        var root = TestAssets.TempDir();
        var first = new RecipeRunner(RecipeParser.Load(path, "one"), TestAssets.Assets, root);
        var firstRecords = first.Run();

        var second = new RecipeRunner(RecipeParser.Load(path, "two"), TestAssets.Assets, root);
        var log = new List<string>();
        var records = second.Run(log.Add, reuseFrom: first.RunDir);
        Assert.Contains(log, l => l.StartsWith("01-prune: copied from") && l.Contains(first.RunDir));
        Assert.Contains(log, l => l.StartsWith("02-distill: not taken") && l.Contains("other parameters"));
        Assert.Contains("02-distill: running", log);
        // The copy is this run's own (its outputs inside this run's folder), with the same content, and says where it came from.
        var (prune, original) = (records[0], firstRecords[0]);
        Assert.All(prune.Outputs.Values, p => Assert.StartsWith(second.RunDir, p));
        Assert.Equal(original.Hashes, prune.Hashes);
        Assert.Contains(first.RunDir, prune.Note);
        Assert.Equal(File.ReadAllBytes(Path.Combine(original.Outputs["checkpoint:pruned"], "weights.safetensors")),
            File.ReadAllBytes(Path.Combine(prune.Outputs["checkpoint:pruned"], "weights.safetensors")));
        Assert.All(records, r => Assert.Equal("done", r.Status));

        // Asked again: both stages stand as they are, nothing is copied.
        log.Clear();
        new RecipeRunner(RecipeParser.Load(path, "two"), TestAssets.Assets, root).Run(log.Add, reuseFrom: first.RunDir);
        Assert.DoesNotContain(log, l => l.Contains("copied from"));
        Assert.Contains(log, l => l.StartsWith("01-prune: done earlier"));
        Assert.Contains(log, l => l.StartsWith("02-distill: done earlier"));

        // Another seed is another run: refused before anything is written; so is a folder that is not a run.
        File.WriteAllText(path, Recipe(2));
        var otherRoot = TestAssets.TempDir();
        var reseeded = new RecipeRunner(RecipeParser.Load(path, "two"), TestAssets.Assets, otherRoot);
        var refused = Assert.Throws<ReuseSourceException>(() => reseeded.Run(reuseFrom: first.RunDir));
        Assert.Contains("other inputs", refused.Message);
        Assert.False(Directory.Exists(reseeded.RunDir));
        Assert.Contains("not a recipe run", Assert.Throws<ReuseSourceException>(() => reseeded.Run(reuseFrom: dir)).Message);
        Assert.False(Directory.Exists(reseeded.RunDir));
        var (code, output) = CliTests.Ffc("run", path, "--profile", "two", "--artifacts", Path.GetDirectoryName(reseeded.RunDir)!, "--reuse-from", first.RunDir);
        Assert.Equal(2, code);
        Assert.Contains($"error: --reuse-from {first.RunDir}: ran with other inputs", output);
        Assert.False(Directory.Exists(reseeded.RunDir));
    }

    [Fact]
    public void Recommend_PicksTheHighestPsnrWithinTheBudget_AndExplains()
    {
        ReportRow Row(string stage, double p50, long bytes, double psnr, double id) => new("r", stage, stage, "fp32", 1, 1, bytes, 1, p50, p50, psnr, 0.9, null, id);
        var rows = new[] { Row("teacher", 30, 16 << 20, 37, 0.8), Row("student", 5, 2 << 20, 33, 0.7), Row("int8", 3, 1 << 19, 32.5, 0.7), Row("tie", 4, 1 << 20, 33, 0.75) };
        var fast = Recommendation.Choose(rows, 6, null);
        Assert.Equal("tie", fast.Choice!.Stage); // same PSNR as student, higher identity cosine
        Assert.Contains("over budget: r/teacher", fast.Explanation);
        Assert.Equal("int8", Recommendation.Choose(rows, null, 0.6).Choice!.Stage);
        Assert.Equal("teacher", Recommendation.Choose(rows, 100, null).Choice!.Stage);
        var none = Recommendation.Choose(rows, 1, null);
        Assert.Null(none.Choice);
        Assert.Contains("closest is r/int8", none.Explanation);
        // A model the judge flags as not swapping has the best PSNR (copying the target reconstructs well): never chosen.
        var copier = Row("copier", 2, 1 << 18, 40, 0.1) with { Swaps = "no" };
        var judged = rows.Select(r => r with { Swaps = "yes" }).Append(copier).ToList();
        var pick = Recommendation.Choose(judged, 6, null);
        Assert.Equal("tie", pick.Choice!.Stage);
        Assert.Contains("ruled out, does not swap", pick.Explanation);
        Assert.Contains("r/copier", pick.Explanation);
        var onlyCopier = Recommendation.Choose([copier], 6, null);
        Assert.Null(onlyCopier.Choice);
        Assert.Contains("no model swaps", onlyCopier.Explanation);
        // Read from a report.csv with the judge's columns.
        var report = Path.Combine(TestAssets.TempDir(), "report.csv");
        var cells = RunReport.Columns.Select(c => c switch { "stage" => "int8", "model" => "m", "precision" => "int8", "swaps" => "no", "judge_pairs" => "64", _ => "1" });
        File.WriteAllText(report, string.Join(',', RunReport.Columns) + "\n" + string.Join(',', cells) + "\n");
        Assert.Equal("no", Assert.Single(Recommendation.Read(report, "x")).Swaps);
        var bad = Path.Combine(TestAssets.TempDir(), "report.csv");
        File.WriteAllText(bad, "a,b\n1,2\n");
        Assert.Contains("not a report.csv", Assert.Throws<InvalidDataException>(() => Recommendation.Read(bad, "x")).Message);
    }
}
