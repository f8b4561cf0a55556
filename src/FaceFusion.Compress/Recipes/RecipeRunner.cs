using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Pruning;
using FaceFusion.Compress.Quantization;
using FaceFusion.Compress.Reporting;
using FaceFusion.Compress.Runtime;
using FaceFusion.Compress.Training;
using Google.Protobuf;

namespace FaceFusion.Compress.Recipes;

/// <summary><c>--reuse-from</c> names no run, this run itself, or a run of other inputs.</summary>
public sealed class ReuseSourceException(string message) : IOException(message);

/// <summary>A stage's record in the run manifest.</summary>
public sealed class StageRecord
{
    public string Name { get; set; } = "";
    public string Status { get; set; } = "pending";
    /// <summary>Wall-clock seconds the stage has run, summed over every resumed segment (kept up to date while it runs).</summary>
    public double Seconds { get; set; }
    public Dictionary<string, string> Outputs { get; set; } = new();
    public Dictionary<string, string> Hashes { get; set; } = new();
    /// <summary>SHA-256 of the stage's kind, parameters and the content of the files they name (its config): a stage whose settings changed is run again from scratch.</summary>
    public string? ParametersHash { get; set; }
    public string? Note { get; set; }
}

/// <summary>
/// Runs a recipe's stages in order under artifacts/&lt;run&gt;/NN-stage/, recording each in `run.json`. A re-run skips
/// stages whose outputs are present with their recorded hashes and continues an interrupted train or distill stage
/// from its last checkpoint.
/// </summary>
/// <param name="recipe">The validated recipe.</param>
/// <param name="assets">The bundled models.</param>
/// <param name="root">Relative paths in the recipe resolve against this folder (the repository root).</param>
/// <param name="artifactsDir">Where runs go (default ROOT/artifacts): the run is ARTIFACTS/&lt;name&gt;[-&lt;profile&gt;].</param>
public sealed class RecipeRunner(Recipe recipe, AssetPaths assets, string root, string? artifactsDir = null)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>How often a running stage's time so far is saved to run.json (at its next progress report). Tests shorten it.</summary>
    internal TimeSpan StageTimeSaveInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The run's folder: always one folder directly under the artifacts folder (the name is checked to be one segment).</summary>
    public string RunDir => Path.Combine(Path.GetFullPath(artifactsDir ?? Path.Combine(root, "artifacts")),
        PathSegment.Require(recipe.Profile is null ? recipe.Name : $"{recipe.Name}-{recipe.Profile}", "run name", recipe.Path));

    /// <summary>When another process runs the same run folder, stop with <see cref="OutputInUseException"/> instead of waiting.</summary>
    public bool NoWait { get; init; }
    private string Resolve(string path) => Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(root, path));

    // What the stages so far produced.
    private string? _teacher;
    private string? _current;
    private readonly Dictionary<string, string> _checkpoints = new();   // label → checkpoint folder
    private readonly List<(string Label, string Onnx, string? Reference)> _exports = [];
    private readonly List<(string Label, BenchRow Row)> _bench = [];
    private readonly List<ResolutionLatencyRow> _latencyByResolution = [];
    private readonly List<SwapJudgeRow> _judge = [];   // the bench stage's judge rows: copy-target and the exports, latest per pair set

    /// <summary>The plan with estimated params and MACs after each stage; does no work.</summary>
    public List<string> Plan()
    {
        var lines = new List<string>();
        NetworkGraph? current = recipe.Teacher is not null && Directory.Exists(Resolve(recipe.Teacher)) ? Checkpoint.LoadGraph(Resolve(recipe.Teacher)) : null;
        // After a prune stage the model is not known until it runs: later stages show the prune target's bound instead.
        string? bound = null;
        for (int i = 0; i < recipe.Stages.Count; i++)
        {
            var s = recipe.Stages[i];
            string estimate = "";
            switch (s.Kind)
            {
                case "train":
                    var config = TrainConfig.Load(Resolve(s.Parameters["config"]));
                    current = Directory.Exists(Resolve(config.Model)) ? Checkpoint.LoadGraph(Resolve(config.Model)) : SwapperArchitectures.Build(config.Model, recipe.Resolution);
                    bound = null;
                    break;
                case "prune":
                    if (current is not null)
                    {
                        var summary = ModelSummary.Of(current, recipe.Resolution);
                        var (metric, original) = s.Parameters.ContainsKey("target_macs") ? (PruneTarget.Macs, summary.Macs)
                            : s.Parameters.ContainsKey("target_params") ? (PruneTarget.Params, summary.Params) : (PruneTarget.LatencyMs, 0L);
                        if (metric == PruneTarget.LatencyMs)
                            bound = PruneTarget.Parse(metric, s.Parameters["target_latency_ms"]) is { IsFraction: true } t ? $"p50 ≤ {t.Value:0.###} × the current model's" : $"p50 ≤ {s.Parameters["target_latency_ms"]}";
                        else
                        {
                            var goal = (long)PruneTarget.Parse(metric, s.Parameters["target_" + metric]).Goal(original);
                            // Pruning only removes: a bound the earlier stages already meet stays the current size.
                            bound = $"{(metric == PruneTarget.Macs ? "MACs" : "params")} ≤ {ModelSummary.Human(Math.Min(goal, original))}";
                        }
                        estimate = "→ " + bound;
                    }
                    break;
                case "distill":
                    if (s.Get("student", "current") != "current")
                    {
                        current = SwapperArchitectures.Build(s.Get("student", "student"), recipe.Resolution);
                        bound = null;
                    }
                    if (s.Parameters.TryGetValue("student_graph", out var studentGraph))
                    {
                        var file = Resolve(studentGraph);
                        current = NetworkGraph.FromJson(File.ReadAllText(file), file);
                        bound = null;
                    }
                    if (s.GetInt("attention_kv_pool", 1) > 1 && current is not null && bound is null)
                        current = current.WithAttentionKeyValuePool(s.GetInt("attention_kv_pool", 1), s.GetList("attention_kv_nodes").ToList());
                    break;
            }
            if (bound is not null && estimate.Length == 0) estimate = bound;
            if (current is not null && estimate.Length == 0)
            {
                var summary = ModelSummary.Of(current, recipe.Resolution);
                estimate = $"params {ModelSummary.Human(summary.Params)}, MACs {ModelSummary.Human(summary.Macs)}";
            }
            lines.Add($"{i + 1:D2}-{s.Kind}: {string.Join(", ", s.Parameters.Select(kv => $"{kv.Key}={kv.Value}"))} {(estimate.Length > 0 ? $"[{estimate}]" : "")}".TrimEnd());
        }
        return lines;
    }

    /// <summary>
    /// Runs (or resumes) every stage. Progress lines go to <paramref name="log"/>. <paramref name="rerunFrom"/> (a stage
    /// folder name such as <c>02-prune</c>, or a stage kind: its first stage) starts that stage again from scratch even
    /// though it finished — after a toolkit change, or to re-measure on another machine — and so every later stage.
    /// <paramref name="reuseFrom"/> (another run folder of the same inputs, e.g. another profile's) first copies in the
    /// leading stages that run finished with the same parameters (<see cref="ReuseStages"/>).
    /// </summary>
    /// <exception cref="ReuseSourceException"><paramref name="reuseFrom"/> is not a run of the same teacher, data, seed and resolution (checked before anything is written).</exception>
    public List<StageRecord> Run(Action<string>? log = null, string? rerunFrom = null, string? reuseFrom = null)
    {
        int rerunIndex = rerunFrom is null ? -1 : StageIndex(rerunFrom);
        // One writer per run: a second `ffc run` of it waits (or stops with --no-wait) instead of redoing the work beside it.
        using var held = OutputLock.ForPath(RunDir, wait: !NoWait, log); // beside the run folder: a refused run creates no folder
        var manifestPath = Path.Combine(RunDir, "run.json");
        var previous = File.Exists(manifestPath) ? JsonSerializer.Deserialize<RunManifest>(File.ReadAllText(manifestPath), Json) : null;
        if (previous is not null) ValidateRecords(previous, manifestPath);
        var records = previous?.Stages ?? [];
        if (recipe.Teacher is not null)
        {
            var t = Resolve(recipe.Teacher);
            if (!Directory.Exists(t) && !File.Exists(t)) throw new FileNotFoundException($"{recipe.Path}: teacher '{recipe.Teacher}' not found", t);
            _teacher = t;
            if (Directory.Exists(t)) _checkpoints["teacher"] = t;
        }
        var manifest = new RunManifest
        {
            Recipe = Path.GetFullPath(recipe.Path), RecipeHash = recipe.Hash, Profile = recipe.Profile, Seed = recipe.Seed,
            Toolkit = typeof(RecipeRunner).Assembly.GetName().Version?.ToString(3) ?? "0",
            Packages = PackageVersions(),
            DataManifestSha256 = Sha256(Path.Combine(Resolve(recipe.Data), FaceManifest.FileName)),
        };
        manifest.InputsHash = InputsHash(manifest.DataManifestSha256);
        manifest.RecipeText = File.ReadAllText(recipe.Path);
        manifest.Teacher = recipe.Teacher;
        // Stage hashes cover only each stage's own keys: a run whose shared inputs changed (another teacher, e.g. by
        // --teacher, other data, seed or resolution) must not reuse any stage's outputs. Manifests written before the
        // inputs were recorded carry none; they are trusted once and record them from now on.
        bool inputsChanged = previous?.InputsHash is { } before && before != manifest.InputsHash;
        if (inputsChanged) log?.Invoke("inputs changed since the last run (teacher, data, seed or resolution): every stage runs again");
        if (reuseFrom is not null)
        {
            var other = ReadReuseSource(reuseFrom, manifest.InputsHash!);
            if (inputsChanged)
            {
                // Nothing here stands any more: cleared, so no stale checkpoint is resumed by a stage not copied in.
                foreach (var stale in records) OwnedFolder.DeleteChild(RunDir, stale.Name);
                records = [];
            }
            inputsChanged = false;
            records = ReuseStages(reuseFrom, other, records, log);
        }
        Directory.CreateDirectory(RunDir);
        if (reuseFrom is not null)
        {
            manifest.Stages = records;
            WriteManifest(manifestPath, manifest);
        }
        bool upstreamRan = false;
        for (int i = 0; i < recipe.Stages.Count; i++)
        {
            var stage = recipe.Stages[i];
            var name = $"{i + 1:D2}-{stage.Kind}";
            var dir = Path.Combine(RunDir, name);
            var record = records.FirstOrDefault(r => r.Name == name) ?? new StageRecord { Name = name };
            var parametersHash = ParametersHash(stage);
            bool changed = record.ParametersHash is not null && record.ParametersHash != parametersHash || inputsChanged && i == 0;
            if (changed || i == rerunIndex)
            {
                // Changed parameters or --rerun: the old outputs and checkpoints belong to another configuration.
                log?.Invoke(!changed ? $"{name}: run again from scratch (--rerun)"
                    : inputsChanged && i == 0 ? $"{name}: starting it again (inputs changed)"
                    : $"{name}: parameters changed since the last run; starting it again");
                OwnedFolder.DeleteChild(RunDir, name);
                record = new StageRecord { Name = name };
                upstreamRan |= i == rerunIndex;
            }
            record.ParametersHash = parametersHash;
            if (!upstreamRan && record.Status == "done" && record.Outputs.All(o => (File.Exists(o.Value) || Directory.Exists(o.Value)) && (!record.Hashes.TryGetValue(o.Key, out var h) || h == Sha256Path(o.Value))))
            {
                log?.Invoke($"{name}: done earlier, outputs verified; skipped");
                Restore(stage, record);
            }
            else
            {
                log?.Invoke($"{name}: running");
                // Whatever later stages left (checkpoints included) belongs to this stage's old outputs: cleared now, so
                // that neither they nor a failure in this run can leave them to be resumed. Only a stage whose inputs
                // are unchanged continues where it stopped.
                for (int j = i + 1; j < recipe.Stages.Count; j++)
                {
                    var later = $"{j + 1:D2}-{recipe.Stages[j].Kind}";
                    OwnedFolder.DeleteChild(RunDir, later);
                    records = records.Where(r => r.Name != later).ToList();
                }
                upstreamRan = true; // later stages read this one's outputs: they run again too
                // An interrupted stage resumes: its earlier segments' time (saved at most once a minute while it ran) counts.
                double earlier = record.Status == "running" ? record.Seconds : 0;
                record.Status = "running";
                manifest.Stages = records.Where(r => r.Name != name).Append(record).OrderBy(r => r.Name).ToList();
                WriteManifest(manifestPath, manifest);
                var watch = Stopwatch.StartNew();
                var lastSaved = TimeSpan.Zero;
                // The stage's time so far is saved at most once a minute, from the stage's own progress (training steps,
                // pruning steps, log lines) on the working thread: a thread-pool timer here allocated while LibTorch
                // worked, which could start the collection that finalizes a TorchSharp temporary mid-call (README,
                // platform notes).
                void Tick()
                {
                    if (watch.Elapsed - lastSaved < StageTimeSaveInterval) return;
                    lastSaved = watch.Elapsed;
                    record.Seconds = earlier + watch.Elapsed.TotalSeconds;
                    try { WriteManifest(manifestPath, manifest); } catch (IOException) { /* the next tick or the stage's end writes it */ }
                }
                Directory.CreateDirectory(dir);
                record.Outputs = RunStage(stage, dir, message => { log?.Invoke(message); Tick(); }, Tick);
                record.Seconds = earlier + watch.Elapsed.TotalSeconds;
                record.Hashes = record.Outputs.ToDictionary(o => o.Key, o => Sha256Path(o.Value));
                record.Status = "done";
                Restore(stage, record);
            }
            records = records.Where(r => r.Name != name).Append(record).OrderBy(r => r.Name).ToList();
            manifest.Stages = records;
            WriteManifest(manifestPath, manifest);
        }
        return records;
    }

    /// <summary>The manifest of the run <c>--reuse-from</c> names, refused unless it ran on this run's inputs.</summary>
    private RunManifest ReadReuseSource(string otherRunDir, string inputsHash)
    {
        var otherDir = Path.GetFullPath(otherRunDir);
        var otherManifestPath = Path.Combine(otherDir, "run.json");
        if (!File.Exists(otherManifestPath)) throw new ReuseSourceException($"{otherRunDir}: not a recipe run (no run.json)");
        if (Path.GetFullPath(RunDir).TrimEnd(Path.DirectorySeparatorChar) == otherDir.TrimEnd(Path.DirectorySeparatorChar))
            throw new ReuseSourceException($"{otherRunDir}: that is this run's own folder");
        RunManifest? other;
        try { other = JsonSerializer.Deserialize<RunManifest>(File.ReadAllText(otherManifestPath), Json); }
        catch (JsonException e) { throw new ReuseSourceException($"{otherRunDir}: its run.json is not a run manifest ({e.Message})"); }
        if (other is null) throw new ReuseSourceException($"{otherRunDir}: its run.json is empty");
        try { ValidateRecords(other, otherManifestPath); }
        catch (UnsafeOutputException e) { throw new ReuseSourceException(e.Message); }
        if (other.InputsHash != inputsHash)
            throw new ReuseSourceException($"{otherRunDir}: ran with other inputs (teacher, data, seed or resolution), so none of its stages can stand in for this run's");
        return other;
    }

    /// <summary>
    /// Copies into this run the leading stages another run of the same recipe inputs finished with the same parameters
    /// (e.g. the prune stage several profiles share), so they are skipped here: a stage is taken only when every stage
    /// before it matches too (same recorded output hashes), its outputs all lie inside its own folder there, and the
    /// copy hashes as recorded. The copy goes to a temporary folder first; its record notes where it came from. Stages
    /// this run already finished identically are kept. Returns this run's records with the copies in.
    /// </summary>
    private List<StageRecord> ReuseStages(string otherRunDir, RunManifest other, List<StageRecord> records, Action<string>? log)
    {
        var otherDir = Path.GetFullPath(otherRunDir);
        var result = records.ToList();
        bool copied = false;
        int firstOwn = recipe.Stages.Count; // the first stage this run works itself
        for (int i = 0; i < recipe.Stages.Count; i++)
        {
            var name = $"{i + 1:D2}-{recipe.Stages[i].Kind}";
            var theirs = other.Stages.FirstOrDefault(r => r.Name == name);
            var ours = result.FirstOrDefault(r => r.Name == name);
            var parametersHash = ParametersHash(recipe.Stages[i]);
            if (theirs is null || theirs.Status != "done" || theirs.ParametersHash != parametersHash)
            {
                log?.Invoke($"{name}: not taken from {otherRunDir} ({(theirs is null ? "it has no such stage" : theirs.Status != "done" ? $"{theirs.Status} there" : "other parameters")}); from here on this run works itself");
                firstOwn = i;
                break;
            }
            if (ours is { Status: "done" } && ours.ParametersHash == parametersHash && ours.Hashes.Count == theirs.Hashes.Count
                && ours.Hashes.All(h => theirs.Hashes.GetValueOrDefault(h.Key) == h.Value))
                continue; // this run has the same outputs already
            var theirDir = Path.Combine(otherDir, name);
            string Inside(string path) => Path.GetRelativePath(theirDir, path);
            var outside = theirs.Outputs.Where(o => Inside(o.Value).StartsWith("..") || Path.IsPathRooted(Inside(o.Value))).Select(o => o.Value).ToList();
            if (outside.Count > 0)
            {
                log?.Invoke($"{name}: not taken from {otherRunDir}: its outputs lie outside its folder there ({string.Join(", ", outside)}); from here on this run works itself");
                firstOwn = i;
                break;
            }
            var dir = Path.Combine(RunDir, name);
            var staging = dir + ".reuse-tmp";
            OwnedFolder.DeleteChild(RunDir, name + ".reuse-tmp");
            CopyDirectory(theirDir, staging);
            var copy = new StageRecord
            {
                Name = name, Status = "done", Seconds = theirs.Seconds, ParametersHash = parametersHash, Hashes = new(theirs.Hashes),
                Outputs = theirs.Outputs.ToDictionary(o => o.Key, o => Path.Combine(dir, Inside(o.Value))),
                Note = $"copied from {Path.Combine(otherDir, name)}{(theirs.Note is null ? "" : $"; {theirs.Note}")}",
            };
            var mismatch = copy.Outputs.FirstOrDefault(o => copy.Hashes.TryGetValue(o.Key, out var h) && h != Sha256Path(Path.Combine(staging, Inside(theirs.Outputs[o.Key]))));
            if (mismatch.Key is not null)
            {
                OwnedFolder.DeleteChild(RunDir, name + ".reuse-tmp");
                log?.Invoke($"{name}: not taken from {otherRunDir}: its output '{mismatch.Key}' no longer has the recorded hash there; from here on this run works itself");
                firstOwn = i;
                break;
            }
            OwnedFolder.DeleteChild(RunDir, name);
            Directory.Move(staging, dir);
            result = result.Where(r => r.Name != name).Append(copy).OrderBy(r => r.Name).ToList();
            copied = true;
            log?.Invoke($"{name}: copied from {Path.Combine(otherDir, name)} (same inputs and parameters, outputs verified)");
        }
        if (copied)
        {
            // What this run had after the copied stages was made from other outputs: cleared, checkpoints included.
            var later = Enumerable.Range(firstOwn, recipe.Stages.Count - firstOwn).Select(j => $"{j + 1:D2}-{recipe.Stages[j].Kind}").ToHashSet();
            foreach (var stale in later) OwnedFolder.DeleteChild(RunDir, stale);
            result = result.Where(r => !later.Contains(r.Name)).ToList();
        }
        return result;
    }

    /// <summary>
    /// Stage names read from a run.json become folder names that get deleted and replaced: each must be one folder
    /// name (recorded outputs are only read and hashed; those of other runs are checked by <see cref="ReuseStages"/>).
    /// </summary>
    /// <exception cref="UnsafeOutputException">Naming the manifest, and the stage name.</exception>
    private static void ValidateRecords(RunManifest manifest, string manifestPath)
    {
        foreach (var record in manifest.Stages ?? [])
        {
            PathSegment.Require(record.Name, "stage name", manifestPath);
            record.Outputs ??= [];
            record.Hashes ??= [];
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        foreach (var sub in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, sub)));
    }

    /// <summary>
    /// Rebuilds the report of an existing run (`ffc report RUN`) from its `run.json`: the recipe and profile it
    /// records, and the outputs of every finished stage. Writes `report.md`, `report.csv` and the plots to
    /// <paramref name="outputDir"/> (default RUN/report). Needs no model to be re-run.
    /// </summary>
    public static (string Markdown, string Csv) Report(string runDir, AssetPaths assets, string root, string? outputDir = null)
    {
        var manifestPath = Path.Combine(runDir, "run.json");
        if (!File.Exists(manifestPath)) throw new FileNotFoundException($"{runDir}: not a recipe run (no run.json)", manifestPath);
        RunManifest manifest;
        try { manifest = JsonSerializer.Deserialize<RunManifest>(File.ReadAllText(manifestPath), Json) ?? throw new InvalidDataException($"{manifestPath}: empty manifest"); }
        catch (JsonException e) { throw new InvalidDataException($"{manifestPath}: malformed run manifest ({e.Message})", e); }
        // The recipe as it was run: its text from the manifest when recorded (the file may have moved or changed since).
        Recipe recipe;
        if (manifest.RecipeText is not null)
        {
            var copy = Path.Combine(Path.GetTempPath(), $"ffc-{Guid.NewGuid():N}-{Path.GetFileName(manifest.Recipe)}");
            AtomicFile.WriteAllText(copy, manifest.RecipeText);
            try { recipe = RecipeParser.Load(copy, manifest.Profile, manifest.Teacher); }
            finally { File.Delete(copy); }
        }
        else if (File.Exists(manifest.Recipe)) recipe = RecipeParser.Load(manifest.Recipe, manifest.Profile);
        else throw new FileNotFoundException($"{manifestPath}: the run's recipe {manifest.Recipe} is gone", manifest.Recipe);
        // The report names the recipe as run: its path (relative to the repository when inside it) and recorded hash.
        var shown = Path.GetRelativePath(root, manifest.Recipe);
        recipe = recipe with { Path = shown.StartsWith("..", StringComparison.Ordinal) ? manifest.Recipe : shown, Hash = manifest.RecipeHash.Length > 0 ? manifest.RecipeHash : recipe.Hash };
        var runner = new RecipeRunner(recipe, assets, root);
        if (recipe.Teacher is not null && Directory.Exists(runner.Resolve(recipe.Teacher))) runner._checkpoints["teacher"] = runner.Resolve(recipe.Teacher);
        foreach (var record in manifest.Stages.Where(r => r.Status == "done").OrderBy(r => r.Name, StringComparer.Ordinal))
        {
            if (!int.TryParse(record.Name.Split('-')[0], out var number) || number < 1 || number > recipe.Stages.Count) continue;
            runner.Restore(recipe.Stages[number - 1], record);
        }
        if (runner._bench.Count == 0) throw new InvalidDataException($"{runDir}: no finished bench stage to report on");
        var dir = outputDir ?? Path.Combine(runDir, "report");
        Directory.CreateDirectory(dir);
        return RunReport.Write(dir, runDir, recipe, runner._bench, runner._latencyByResolution, runner._judge);
    }

    /// <summary>Re-establishes what a finished stage contributes to later ones from its recorded outputs.</summary>
    private void Restore(RecipeStage stage, StageRecord record)
    {
        foreach (var (key, path) in record.Outputs)
        {
            if (key.StartsWith("checkpoint:"))
            {
                var label = key["checkpoint:".Length..];
                _checkpoints[label] = path;
                if (label == "teacher") _teacher ??= path;
                else _current = path;
                if (label == "trained" && _teacher is null) { _teacher = path; _checkpoints["teacher"] = path; }
            }
            else if (key.StartsWith("onnx:"))
            {
                var label = key["onnx:".Length..];
                if (_exports.All(e => e.Onnx != path))
                    _exports.Add((label, path, record.Outputs.GetValueOrDefault($"reference:{label}")));
            }
        }
        if (stage.Kind == "bench" && record.Outputs.TryGetValue("latency:csv", out var latencyPath))
        {
            using var reader = CsvHelper.CsvReader.FromFile(latencyPath);
            _latencyByResolution.Clear();
            _latencyByResolution.AddRange(reader.GetRecords<ResolutionLatencyRow>());
        }
        if (stage.Kind == "bench" && record.Outputs.TryGetValue("judge:csv", out var judgePath) && File.Exists(judgePath))
        {
            using var reader = CsvHelper.CsvReader.FromFile(judgePath);
            var models = _exports.Select(e => Path.GetFileNameWithoutExtension(e.Onnx)).Append(SwapJudging.CopyTarget).ToHashSet();
            _judge.Clear();
            _judge.AddRange(reader.GetRecords<SwapJudgeRow>().Where(r => models.Contains(r.Model))
                .GroupBy(r => (r.Model, r.PairSet, r.Path)).Select(g => g.Last()));
        }
        if (stage.Kind == "bench")
            foreach (var (key, path) in record.Outputs.Where(o => o.Key.StartsWith("bench:")))
            {
                using var reader = CsvHelper.CsvReader.FromFile(path);
                var rows = reader.GetRecords<BenchRow>().ToList();
                foreach (var e in _exports)
                {
                    var row = rows.LastOrDefault(r => r.Model == Path.GetFileNameWithoutExtension(e.Onnx));
                    if (row is not null && _bench.All(b => b.Label != e.Label)) _bench.Add((e.Label, row));
                }
            }
    }

    /// <summary>The index of a stage given as its folder name (<c>02-prune</c>) or kind (its first stage); an error lists the stages.</summary>
    public int StageIndex(string stage)
    {
        var names = recipe.Stages.Select((s, i) => $"{i + 1:D2}-{s.Kind}").ToList();
        int index = names.IndexOf(stage);
        if (index < 0) index = recipe.Stages.Select((s, i) => (s.Kind, i)).Where(p => p.Kind == stage).Select(p => p.i).DefaultIfEmpty(-1).First();
        return index >= 0 ? index : throw new ArgumentException($"{recipe.Path}: no stage '{stage}' (stages: {string.Join(", ", names)})");
    }

    /// <summary>
    /// Re-exports every FP32 and INT8 model of the run at <paramref name="size"/> px (same weights; INT8 with its
    /// calibrated ranges) and times them in interleaved rounds: the latency targets hold at 256 px too, not only at
    /// the training size. FP16 exports are skipped (they are for GPU providers).
    /// </summary>
    private List<ResolutionLatencyRow> LatencyAt(int size, string dir, int rounds, int repeats, Action<string>? log)
    {
        log?.Invoke($"  interleaved latency at {size} px");
        var models = new List<(string Label, string Precision, string Path)>();
        foreach (var (label, onnx, reference) in _exports.Where(e => !e.Label.EndsWith("-fp16")))
        {
            if (size == recipe.Resolution)
            {
                // The run's own exports, as benchmarked.
                models.Add((label, reference is not null && QuantizationAware.IsQuantized(reference) ? "int8" : "fp32", onnx));
                continue;
            }
            if (reference is null) continue;
            Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, $"{label}.onnx");
            if (QuantizationAware.IsQuantized(reference))
            {
                var (model, simulator) = QuantizationAware.Load(reference);
                using (model) using (simulator) AtomicFile.WriteAllBytes(path, QuantizationAware.ExportInt8(model, simulator, resolution: size).ToByteArray());
                models.Add((label, "int8", path));
            }
            else
            {
                using var model = Checkpoint.Load(reference);
                model.eval();
                // Timing only: the fastest FP32 form (merged heads) is the fair baseline of a speed-up.
                OnnxExporter.ExportToFile(model, path, new ExportOptions { Resolution = size, MergeSiblingConvs = true });
                models.Add((label, "fp32", path));
            }
        }
        // Repeated (default 5), because one interleaved measurement on a shared 2-core machine moved a 128-px speed-up by ±15 %.
        var times = InterleavedLatency.Measure(models.Select(m => m.Path).ToList(), rounds: rounds, repeats: repeats);
        int t = models.FindIndex(m => m.Label == "teacher");
        return models.Select((m, k) =>
        {
            (double Median, double Min, double Max)? speedup = t < 0 ? null : times[t].RatioTo(times[k]);
            return new ResolutionLatencyRow
            {
                Resolution = size, Stage = m.Label, Precision = m.Precision, P50Ms = times[k].P50Ms, P90Ms = times[k].P90Ms,
                SpeedupVsTeacher = speedup?.Median, SpeedupMin = speedup?.Min, SpeedupMax = speedup?.Max, Repeats = repeats,
            };
        }).ToList();
    }

    private Dictionary<string, string> RunStage(RecipeStage stage, string dir, Action<string> log, Action tick)
    {
        var outputs = new Dictionary<string, string>();
        var data = Resolve(recipe.Data);
        switch (stage.Kind)
        {
            case "train":
            {
                var config = TrainConfig.Load(Resolve(stage.Parameters["config"]));
                config.Output = dir; config.Data = data; config.Resolution = recipe.Resolution; config.Seed = recipe.Seed;
                new SwapTrainer(config, assets, root).Train(resume: true, new InlineProgress<TrainProgress>(_ => tick()));
                outputs["checkpoint:trained"] = Path.Combine(dir, "model");
                break;
            }
            case "sensitivity":
            {
                using var model = Checkpoint.Load(Model());
                using var identity = new IdentityNetwork(assets.IdentityEmbedder);
                var criterion = ParseCriterion(stage.Get("criterion", "taylor"));
                var options = new PruneOptions { Target = PruneTarget.Parse(PruneTarget.Macs, "1"), DataDir = data, Criterion = criterion, Seed = recipe.Seed };
                var analysis = new ChannelAnalysis(model.Graph);
                Dictionary<int, double[]> importance;
                using (var train = new FaceSwapData(data, Splits.Train, model.Graph.Resolution))
                    importance = new IterativePruner(options, identity).Score(model, analysis, train, 0);
                var ratios = stage.Get("ratios", "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9").Split(',').Select(r => double.Parse(r, CultureInfo.InvariantCulture)).ToArray();
                var rows = Sensitivity.Measure(model, importance, data, ratios, stage.GetInt("eval_pairs", 32));
                var csv = Sensitivity.WriteOutputs(dir, rows, "val PSNR drop when one group is pruned alone");
                outputs["sensitivity"] = csv;
                break;
            }
            case "prune":
            {
                using var model = Checkpoint.Load(Model());
                using var identity = new IdentityNetwork(assets.IdentityEmbedder);
                var target = stage.Parameters.ContainsKey("target_macs") ? PruneTarget.Parse(PruneTarget.Macs, stage.Parameters["target_macs"])
                    : stage.Parameters.ContainsKey("target_params") ? PruneTarget.Parse(PruneTarget.Params, stage.Parameters["target_params"])
                    : PruneTarget.Parse(PruneTarget.LatencyMs, stage.Parameters["target_latency_ms"]);
                var options = new PruneOptions
                {
                    Target = target, DataDir = data, Criterion = ParseCriterion(stage.Get("criterion", "taylor")), Seed = recipe.Seed,
                    Selection = new SelectionOptions { StepFraction = stage.GetDouble("step_fraction", 0.1), MinChannels = stage.GetInt("min_channels", 8), ChannelMultiple = stage.GetInt("channel_multiple", 8), MacAware = stage.GetBool("mac_aware", false) },
                    FinetuneSteps = stage.GetInt("finetune_steps", 50), MaxPsnrDropDb = stage.GetDouble("max_drop_db", 0.5),
                    MaxIdentityDrop = stage.GetDouble("max_id_drop", double.PositiveInfinity),
                    Distill = stage.GetBool("distill", true), TrainLimit = stage.Parameters.ContainsKey("train_limit") ? stage.GetInt("train_limit", 0) : null,
                    ProgressDir = Path.Combine(dir, "progress"), // an interrupted stage continues after its last accepted step
                };
                var pruner = new IterativePruner(options, identity);
                var (pruned, steps, outcome) = pruner.Run(model, new InlineProgress<PruneStep>(s => log?.Invoke($"  prune step {s.Step}: MACs {ModelSummary.Human(s.Macs)}, val PSNR {s.PsnrDb:0.00} dB, {s.Action}")));
                if (stage.GetInt("final_finetune", 0) is > 0 and var recovery)
                {
                    pruner.Recover(pruned, model, recovery, steps, new InlineProgress<string>(_ => tick()));
                    log?.Invoke($"  after {recovery} recovery fine-tuning steps: val PSNR {steps[^1].PsnrDb:0.00} dB");
                }
                using (pruned) IterativePruner.WriteOutputs(Path.Combine(dir, "model"), pruned, steps, outcome, new Dictionary<string, string> { ["recipe"] = recipe.Name });
                log?.Invoke($"  {outcome}");
                outputs["checkpoint:pruned"] = Path.Combine(dir, "model");
                break;
            }
            case "distill":
            {
                var student = stage.Get("student", "current");
                var config = stage.Parameters.TryGetValue("config", out var file) ? TrainConfig.Load(Resolve(file)) : new TrainConfig
                {
                    Phases = [new TrainPhase { Resolution = recipe.Resolution, Steps = stage.GetInt("steps", 200) }],
                    AdversarialStartStep = stage.GetInt("steps", 200) / 2,
                };
                config.Model = student == "current" ? Model() : student;
                if (stage.Parameters.TryGetValue("student_graph", out var graphFile))
                {
                    // An edited architecture (e.g. a sub-pixel decoder ending) that keeps what matches of the student.
                    var source = Directory.Exists(config.Model) ? config.Model : BuiltStudent(config.Model, Path.Combine(dir, "student-init"));
                    var path = Resolve(graphFile);
                    var start = Checkpoint.WarmStartFrom(NetworkGraph.FromJson(File.ReadAllText(path), path), source, recipe.Seed, icnr: stage.GetBool("icnr", false));
                    using (start.Model) Checkpoint.Save(Path.Combine(dir, "student-warm"), start.Model, new Dictionary<string, string> { ["warm_start_from"] = source });
                    log?.Invoke($"  student from {graphFile}: {start.Copied.Count} tensors copied from {source}, {start.Fresh.Count} fresh ({string.Join(", ", start.Fresh.Select(k => k.Split('.')[0]).Distinct())})");
                    config.Model = Path.Combine(dir, "student-warm");
                }
                if (stage.GetInt("attention_kv_pool", 1) is var pool and > 1)
                {
                    // The student as trained: the attention's keys/values pooled, weights as they were.
                    var init = Path.Combine(dir, "student-init");
                    if (!Directory.Exists(config.Model)) config.Model = BuiltStudent(config.Model, init);
                    Checkpoint.Rewrite(config.Model, init, g => g.WithAttentionKeyValuePool(pool, stage.GetList("attention_kv_nodes").ToList()));
                    config.Model = init;
                }
                config.EvalSplit = Splits.Val; // reported numbers come from the bench stage on its split
                config.Teacher = _teacher ?? throw new InvalidOperationException("distill: no teacher");
                config.Output = dir; config.Data = data; config.Resolution = recipe.Resolution; config.Seed = recipe.Seed;
                if (stage.Parameters.TryGetValue("features", out var features)) config.Distill.FeaturePairs.AddRange(features.Split(','));
                new SwapTrainer(config, assets, root).Train(resume: true, new InlineProgress<TrainProgress>(_ => tick()));
                outputs["checkpoint:distilled"] = Path.Combine(dir, "model");
                break;
            }
            case "finetune":
            {
                var config = stage.Parameters.TryGetValue("config", out var file) ? TrainConfig.Load(Resolve(file)) : new TrainConfig
                {
                    Phases = [new TrainPhase { Resolution = recipe.Resolution, Steps = stage.GetInt("steps", 200) }],
                    Optimizer = new OptimizerConfig { Lr = stage.GetDouble("lr", 1e-4) },
                    AdversarialStartStep = int.MaxValue, CheckpointEvery = 50, SampleEvery = 100, EvalPairs = 64,
                };
                config.Model = Model();
                // A model fine-tuned from itself has nothing to distil from: only the recipe's teacher counts.
                config.Teacher = stage.GetBool("distill", true) && _teacher is not null && _teacher != config.Model ? _teacher : null;
                config.EvalSplit = Splits.Val;
                config.Output = dir; config.Data = data; config.Resolution = recipe.Resolution; config.Seed = recipe.Seed;
                new SwapTrainer(config, assets, root).Train(resume: true, new InlineProgress<TrainProgress>(_ => tick()));
                outputs["checkpoint:finetuned"] = Path.Combine(dir, "model");
                break;
            }
            case "ptq":
            {
                var source = Model();
                using var model = Checkpoint.Load(source);
                var policy = new QuantPolicy { QuantizeSkips = stage.GetBool("int8_skips", false), KeepFloat = stage.GetList("keep_float").ToHashSet() };
                var method = QuantizationAware.ParseMethod(stage.Get("method", "minmax"));
                int calibration = stage.GetInt("calibration", 128);
                var config = PostTrainingQuantizer.Config(calibration, method, policy, stage.GetInt("sensitivity_keep", 0));
                config.IslandWeights = stage.Get("island_weights", config.IslandWeights);
                config.FullRangeWeights = stage.GetBool("full_range_weights", false);
                config.MinSqnrDb = stage.GetDouble("min_sqnr_db", config.MinSqnrDb);
                var prepared = PostTrainingQuantizer.Prepare(model, config, data, recipe.Seed);
                using var folded = prepared.Model;
                using var simulator = prepared.Simulator;
                var proto = PostTrainingQuantizer.Export(prepared, calibration, method, new Dictionary<string, string> { ["recipe"] = recipe.Name });
                // The calibrated model is kept as the bench's reference: parity is then INT8 vs its fake-quant simulation.
                var reference = Path.Combine(dir, "model");
                QuantizationAware.Save(reference, folded, simulator);
                if (prepared.Sensitivity is { } rows) QuantAnalysis.WriteSensitivity(dir, rows);
                var label = recipe.Stages.Any(st => st.Kind == "qat") ? "int8-ptq" : "int8";
                outputs[$"onnx:{label}"] = WriteInt8(Path.Combine(dir, $"{label}.onnx"), proto, folded, simulator, data, config.MinSqnrDb, $"{recipe.Path}: ptq stage", log);
                outputs[$"reference:{label}"] = reference;
                break;
            }
            case "qat":
            {
                var source = Model();
                var config = stage.Parameters.TryGetValue("config", out var file) ? TrainConfig.Load(Resolve(file)) : new TrainConfig
                {
                    Phases = [new TrainPhase { Resolution = recipe.Resolution, Steps = stage.GetInt("steps", 300) }],
                    Optimizer = new OptimizerConfig { Lr = stage.GetDouble("lr", 5e-5), Beta1 = 0.9 },
                    AdversarialStartStep = int.MaxValue, CheckpointEvery = 50, SampleEvery = 100, EvalPairs = 64,
                };
                config.Model = source;
                config.Teacher = stage.GetBool("distill", true) ? source : null;
                config.EvalSplit = Splits.Val;
                config.Output = dir; config.Data = data; config.Resolution = recipe.Resolution; config.Seed = recipe.Seed;
                var q = config.Qat ?? new QatConfig();
                q.Calibration = stage.GetInt("calibration", q.Calibration);
                q.CalibrationMethod = stage.Get("calibration_method", q.CalibrationMethod);
                q.Observer = stage.Get("observer", q.Observer);
                q.FreezeObserversAfter = stage.GetInt("freeze_after", q.FreezeObserversAfter);
                q.LearnableScales = stage.GetBool("learnable_scales", q.LearnableScales);
                q.Int8Skips = stage.GetBool("int8_skips", q.Int8Skips);
                q.IslandWeights = stage.Get("island_weights", q.IslandWeights);
                q.FullRangeWeights = stage.GetBool("full_range_weights", q.FullRangeWeights);
                q.KeepFloat.AddRange(stage.GetList("keep_float"));
                q.SensitivityKeep = stage.GetInt("sensitivity_keep", q.SensitivityKeep);
                q.SensitivityThresholdDb = stage.GetDouble("sensitivity_threshold_db", q.SensitivityThresholdDb);
                q.MinSqnrDb = stage.GetDouble("min_sqnr_db", q.MinSqnrDb);
                config.Qat = q;
                config.Validate($"{recipe.Path}: qat stage");
                var trainer = new SwapTrainer(config, assets, root);
                trainer.Train(resume: true, new InlineProgress<TrainProgress>(_ => tick()));
                var (model, simulator) = QuantizationAware.Load(trainer.ModelDir);
                using (model)
                using (simulator)
                {
                    var proto = QuantizationAware.ExportInt8(model, simulator, metadata: new Dictionary<string, string> { ["recipe"] = recipe.Name, ["source_checkpoint"] = source });
                    outputs["onnx:int8"] = WriteInt8(Path.Combine(dir, "int8.onnx"), proto, model, simulator, data, q.MinSqnrDb, $"{recipe.Path}: qat stage", log);
                    var (floatPsnr, int8Psnr) = QuantAnalysis.FloatVsInt8(model, data);
                    log?.Invoke(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                        $"  same QAT weights on val: float {floatPsnr:0.00} dB, INT8 (simulated) {int8Psnr:0.00} dB, drop {floatPsnr - int8Psnr:0.00} dB"));
                }
                outputs["reference:int8"] = trainer.ModelDir;
                break;
            }
            case "export":
            {
                foreach (var (label, checkpoint) in _checkpoints.Where(c => c.Key != "trained" || !_checkpoints.ContainsKey("teacher") || _checkpoints["teacher"] != c.Value))
                {
                    using var model = Checkpoint.Load(checkpoint);
                    model.eval();
                    var meta = new Dictionary<string, string> { ["recipe"] = File.ReadAllText(recipe.Path), ["source_checkpoint"] = checkpoint };
                    var path = Path.Combine(dir, $"{label}.onnx");
                    OnnxExporter.ExportToFile(model, path, new ExportOptions { Metadata = meta, MergeSiblingConvs = stage.GetBool("merge_heads", false) });
                    outputs[$"onnx:{label}"] = path;
                    outputs[$"reference:{label}"] = checkpoint;
                    if (stage.GetBool("fp16", false))
                    {
                        var half = Path.Combine(dir, $"{label}-fp16.onnx");
                        OnnxExporter.ExportToFile(model, half, new ExportOptions { Precision = ExportPrecision.Fp16, Metadata = meta, MergeSiblingConvs = stage.GetBool("merge_heads", false) });
                        outputs[$"onnx:{label}-fp16"] = half;
                        outputs[$"reference:{label}-fp16"] = checkpoint;
                    }
                }
                // An ONNX teacher has no checkpoint to export: it is benchmarked as given, so the report has its row and
                // the speed-ups their reference (at its own resolution only; a fixed-size file cannot be re-exported).
                if (_teacher is not null && File.Exists(_teacher) && !_checkpoints.ContainsKey("teacher"))
                {
                    using var probe = new OrtSwapper(_teacher);
                    if (probe.Resolution == recipe.Resolution) outputs["onnx:teacher"] = _teacher;
                    else log($"  teacher {_teacher} runs at {probe.Resolution} px, the run at {recipe.Resolution} px: not benchmarked beside the students");
                }
                break;
            }
            case "bench":
            {
                var teacherOnnx = _exports.FirstOrDefault(e => e.Label == "teacher").Onnx;
                // Every model is judged beside copy-target on the same pairs: the baseline is measured once, with the first model.
                IReadOnlyList<SwapJudgeRow>? copyTarget = null;
                foreach (var (label, onnx, reference) in _exports)
                {
                    log?.Invoke($"  bench {label}");
                    var result = SwapBench.Run(new BenchOptions
                    {
                        ModelPath = onnx, Reference = reference, Teacher = label == "teacher" ? null : teacherOnnx, DataDir = data,
                        Split = stage.Get("split", Splits.Test), Pairs = stage.GetInt("pairs", 64), Seed = recipe.Seed,
                        JudgePairs = stage.GetInt("judge_pairs", 64), JudgeFullFrame = stage.GetInt("judge_full_frame", 8), CopyTargetJudge = copyTarget,
                    }, assets);
                    copyTarget ??= result.Judge.Where(j => j.Model == SwapJudging.CopyTarget).ToList();
                    foreach (var note in result.JudgeNotes) log?.Invoke($"  swap judge, not measured: {note}");
                    BenchReport.Write(dir, result);
                }
                outputs["bench:csv"] = Path.Combine(dir, BenchReport.BenchCsv);
                if (File.Exists(Path.Combine(dir, BenchReport.JudgeCsv))) outputs["judge:csv"] = Path.Combine(dir, BenchReport.JudgeCsv);
                // The bench table times models one after another; the speed-up targets use interleaved rounds instead
                // (fair under background load), at the recipe's resolution and at any further size asked for.
                var sizes = stage.GetList("resolutions").Select(v => int.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).Where(v => v != recipe.Resolution)
                    .Prepend(recipe.Resolution).Distinct().ToList();
                {
                    var latencyCsv = Path.Combine(dir, "latency_by_resolution.csv");
                    int rounds = stage.GetInt("latency_rounds", 20), repeats = stage.GetInt("latency_repeats", 5);
                    var rows = sizes.SelectMany(size => LatencyAt(size, Path.Combine(dir, $"latency-{size}"), rounds, repeats, log)).ToList();
                    CsvAppend.Write(latencyCsv, rows);
                    outputs["latency:csv"] = latencyCsv;
                }
                break;
            }
            case "report":
            {
                var (md, csv) = RunReport.Write(dir, RunDir, recipe, _bench, _latencyByResolution, _judge);
                outputs["report:md"] = md;
                outputs["report:csv"] = csv;
                break;
            }
        }
        return outputs;
    }

    /// <summary>
    /// Measures every quantized value's SQNR (`quant_sqnr.csv`) and stops below <paramref name="minSqnrDb"/>; then writes
    /// the INT8 model and logs ONNX Runtime's integer kernels and parity with the simulation.
    /// </summary>
    private static string WriteInt8(string path, Onnx.ModelProto proto, GraphModule model, QuantSimulator simulator, string data, double minSqnrDb, string what, Action<string>? log)
    {
        var dir = Path.GetDirectoryName(path)!;
        var sqnr = QuantAnalysis.Sqnr(model, simulator, data);
        var csv = QuantAnalysis.WriteSqnr(dir, sqnr);
        log?.Invoke($"  worst SQNR: {string.Join(", ", sqnr.Take(3).Select(r => $"{r.Node} {r.SqnrDb:0.0} dB"))}");
        QuantAnalysis.RequireSqnrFloor(sqnr, minSqnrDb, what, csv);
        var bytes = proto.ToByteArray();
        AtomicFile.WriteAllBytes(path, bytes);
        var kernels = PostTrainingQuantizer.InspectKernels(bytes);
        log?.Invoke($"  ONNX Runtime integer kernels: {kernels.IntegerOps}, float convs: {kernels.FloatConvs}");
        log?.Invoke($"  parity ONNX Runtime INT8 vs TorchSharp fake-quant: {QuantAnalysis.Parity(model, bytes, data):0.0} dB");
        return path;
    }

    /// <summary>A built-in architecture saved untrained (seeded) as a checkpoint, so that a graph edit can apply to it.</summary>
    private string BuiltStudent(string architecture, string dir)
    {
        TorchSharp.torch.manual_seed(recipe.Seed);
        using var model = new GraphModule(SwapperArchitectures.Build(architecture, recipe.Resolution));
        var path = dir + "-built";
        Checkpoint.Save(path, model);
        return path;
    }

    /// <summary>The model later stages work on: the latest one produced, else the teacher.</summary>
    private string Model() => _current ?? _checkpoints.GetValueOrDefault("teacher") ?? throw new InvalidOperationException("no model yet: give a teacher checkpoint or a train stage");

    private static ImportanceCriterion ParseCriterion(string text) => text switch
    {
        "l1" => ImportanceCriterion.L1, "l2" => ImportanceCriterion.L2, "bn" => ImportanceCriterion.BnScale, "random" => ImportanceCriterion.Random,
        _ => ImportanceCriterion.Taylor,
    };

    /// <summary>The versions of the libraries that compute the results, read from the loaded assemblies.</summary>
    private static string PackageVersions()
    {
        static string Informational(Type type) =>
            (type.Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false).FirstOrDefault() as System.Reflection.AssemblyInformationalVersionAttribute)?.InformationalVersion.Split('+')[0]
            ?? type.Assembly.GetName().Version?.ToString() ?? "?";
        return $"TorchSharp {Informational(typeof(TorchSharp.torch))}, Microsoft.ML.OnnxRuntime {Informational(typeof(Microsoft.ML.OnnxRuntime.InferenceSession))}, " +
               $"YamlDotNet {Informational(typeof(YamlDotNet.RepresentationModel.YamlStream))}, .NET {Environment.Version}";
    }

    private static void WriteManifest(string path, RunManifest manifest)
    {
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(manifest, Json));
    }

    /// <summary>
    /// Hash of a stage's settings: its keys and values, and the content of every file a value names (a stage's
    /// <c>config</c>), so editing that file re-runs the stage as editing the recipe would.
    /// </summary>
    private string ParametersHash(RecipeStage stage) =>
        Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(stage.Kind + "\n" +
            string.Join("\n", stage.Parameters.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}{FileContentHash(kv.Value)}"))
            // The report judges by the recipe's targets: new thresholds re-write it. Default targets add nothing, so
            // runs from before the key keep their hashes.
            + (stage.Kind == "report" && recipe.Targets is { } t ? $"\ntargets={t}" : "")))).ToLowerInvariant()[..16];

    /// <summary>Hash of what every stage shares: the teacher (its path and content), the data manifest, seed and resolution.</summary>
    private string InputsHash(string dataManifestSha256)
    {
        var teacher = recipe.Teacher is null ? "" : Resolve(recipe.Teacher) + ":" + Sha256Path(Resolve(recipe.Teacher));
        return Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(
            $"teacher={teacher}\ndata={dataManifestSha256}\nseed={recipe.Seed}\nresolution={recipe.Resolution}"))).ToLowerInvariant()[..16];
    }

    private string FileContentHash(string value)
    {
        if (string.IsNullOrWhiteSpace(value) || value.IndexOfAny(Path.GetInvalidPathChars()) >= 0) return "";
        var path = Resolve(value);
        return File.Exists(path) ? ":" + Sha256(path) : "";
    }

    private static string Sha256(string file) => File.Exists(file) ? Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file))).ToLowerInvariant() : "";

    /// <summary>A file's SHA-256, or for a folder the SHA-256 of its files' hashes in name order.</summary>
    private static string Sha256Path(string path) => File.Exists(path) ? Sha256(path)
        : Directory.Exists(path) ? Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(string.Join("|",
            Directory.GetFiles(path).Order(StringComparer.Ordinal).Select(f => Path.GetFileName(f) + ":" + Sha256(f)))))).ToLowerInvariant()
        : "";

    private sealed class RunManifest
    {
        public string Recipe { get; set; } = "";
        public string RecipeHash { get; set; } = "";
        public string? Profile { get; set; }
        public int Seed { get; set; }
        public string Toolkit { get; set; } = "";
        public string Packages { get; set; } = "";
        public string DataManifestSha256 { get; set; } = "";
        /// <summary>Hash of the teacher, data manifest, seed and resolution (null in manifests written before it existed).</summary>
        public string? InputsHash { get; set; }
        /// <summary>The recipe as run, so that `ffc report` works after the file moved or changed.</summary>
        public string? RecipeText { get; set; }
        /// <summary>The teacher the run used (the recipe's or a --teacher override).</summary>
        public string? Teacher { get; set; }
        public List<StageRecord> Stages { get; set; } = [];
    }
}
