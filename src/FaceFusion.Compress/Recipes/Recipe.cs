using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace FaceFusion.Compress.Recipes;

/// <summary>One problem in a recipe: where it is and what is wrong.</summary>
public sealed record RecipeError(string File, long Line, long Column, string Message)
{
    public override string ToString() => $"{File}:{Line}:{Column}: {Message}";
}

/// <summary>Raised when a recipe is invalid; carries every problem found, not just the first.</summary>
public sealed class RecipeException(IReadOnlyList<RecipeError> errors)
    : Exception(string.Join(Environment.NewLine, errors.Select(e => e.ToString())))
{
    public IReadOnlyList<RecipeError> Errors { get; } = errors;
}

/// <summary>One stage of a recipe: its kind and its parameters (validated against <see cref="RecipeSchema"/>).</summary>
public sealed record RecipeStage(string Kind, IReadOnlyDictionary<string, string> Parameters)
{
    public string Get(string key, string fallback) => Parameters.TryGetValue(key, out var v) ? v : fallback;
    public double GetDouble(string key, double fallback) => Parameters.TryGetValue(key, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;
    public int GetInt(string key, int fallback) => Parameters.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
    public bool GetBool(string key, bool fallback) => Parameters.TryGetValue(key, out var v) ? bool.Parse(v) : fallback;
    /// <summary>A list value (comma-separated), empty when absent.</summary>
    public IReadOnlyList<string> GetList(string key) => Parameters.TryGetValue(key, out var v)
        ? v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [];
}

/// <summary>A parsed, validated recipe with one profile applied. <c>Note</c> is said at the top of the run's report
/// (e.g. that it is a reduced run); null when the recipe has none.</summary>
public sealed record Recipe(string Path, string Name, string Hash, string Data, int Resolution, int Seed, string? Teacher, string? Profile,
    IReadOnlyList<RecipeStage> Stages, IReadOnlyList<string> Profiles, string? Note = null, ReportTargets? Targets = null)
{
    /// <summary>The thresholds the report checks: the recipe's <c>targets:</c>, else the closed loop's defaults.</summary>
    public ReportTargets EffectiveTargets => Targets ?? new ReportTargets();
}

/// <summary>
/// What the report checks the final INT8 model against, teacher FP32 as reference (recipe key <c>targets:</c>; the
/// defaults are the closed loop's): its file at most <see cref="FileFraction"/> of the teacher's, p50 at least
/// <see cref="Speedup"/> times faster, `test` PSNR at most <see cref="MaxPsnrDropDb"/> below, identity cosine at most
/// <see cref="MaxIdDrop"/> below.
/// </summary>
public sealed record ReportTargets(double FileFraction = 0.10, double Speedup = 5.0, double MaxPsnrDropDb = 1.0, double MaxIdDrop = 0.02);

/// <summary>
/// Every key a recipe may hold, its type, default and meaning (recipes/README.md documents the same table).
/// Types: string, int, double, bool, path, list (comma-separated or a YAML sequence of scalars).
/// </summary>
public static class RecipeSchema
{
    public sealed record Key(string Type, string Default, string Meaning, string[]? Choices = null);

    private static readonly string[] Criteria = ["taylor", "l1", "l2", "bn", "random"];
    private static readonly string[] CalibrationMethods = ["minmax", "percentile", "entropy"];
    private static readonly string[] IslandStorage = ["int8", "fp16", "fp32"];

    public static readonly IReadOnlyDictionary<string, Key> TopLevel = new Dictionary<string, Key>
    {
        ["name"] = new("string", "the file name", "the run's name: outputs go to artifacts/<name>[-<profile>]/"),
        ["data"] = new("path", "datasets/bundled", "prepared dataset (ffc data prepare)"),
        ["resolution"] = new("int", "128", "model resolution"),
        ["seed"] = new("int", "1", "seed of every stage"),
        ["teacher"] = new("path", "(none)", "teacher checkpoint or ONNX; without it the first train stage's model is the teacher"),
        ["note"] = new("string", "(none)", "a sentence shown at the top of the report, e.g. that the run is reduced"),
        ["stages"] = new("list of stages", "(required)", "the stages, run in order"),
        ["profiles"] = new("map", "(none)", "named sets of overrides, each `stage.key: value` (the first stage of that kind) or `targets.key: value`"),
        ["targets"] = new("map", "(the loop's)", "what the report checks the final INT8 model against (keys below)"),
    };

    /// <summary>Keys of the top-level <c>targets:</c> mapping (<see cref="ReportTargets"/>).</summary>
    public static readonly IReadOnlyDictionary<string, Key> Targets = new Dictionary<string, Key>
    {
        ["file_fraction"] = new("double", "0.10", "INT8 file at most this fraction of the teacher's FP32 file"),
        ["speedup"] = new("double", "5", "p50 latency teacher FP32 / INT8 at least this, at every benched resolution"),
        ["max_psnr_drop_db"] = new("double", "1.0", "bench-split PSNR at most this far below the teacher's"),
        ["max_id_drop"] = new("double", "0.02", "identity cosine at most this far below the teacher's"),
    };

    public static readonly IReadOnlyDictionary<string, IReadOnlyDictionary<string, Key>> Stages = new Dictionary<string, IReadOnlyDictionary<string, Key>>
    {
        ["train"] = new Dictionary<string, Key>
        {
            ["config"] = new("path", "(required)", "training config (ffc train); its output is replaced by the stage folder"),
        },
        ["sensitivity"] = new Dictionary<string, Key>
        {
            ["ratios"] = new("list", "0.1,…,0.9", "fractions of each group removed"),
            ["criterion"] = new("string", "taylor", "taylor, l1, l2, bn or random", Criteria),
            ["eval_pairs"] = new("int", "32", "val faces per measurement"),
        },
        ["prune"] = new Dictionary<string, Key>
        {
            ["target_macs"] = new("string", "(one target required)", "fraction (0.6) or absolute (1.2G)"),
            ["target_params"] = new("string", "", "fraction or absolute (2.5M)"),
            ["target_latency_ms"] = new("string", "", "fraction or milliseconds (8ms)"),
            ["criterion"] = new("string", "taylor", "taylor, l1, l2, bn or random", Criteria),
            ["step_fraction"] = new("double", "0.1", "largest share of remaining prunable channels removed per step"),
            ["finetune_steps"] = new("int", "50", "fine-tuning steps after each pruning step"),
            ["final_finetune"] = new("int", "0", "recovery fine-tuning steps after the last accepted step (cosine learning rate)"),
            ["max_drop_db"] = new("double", "0.5", "val PSNR drop that rolls a step back"),
            ["max_id_drop"] = new("double", "(not checked)", "val identity-cosine drop that rolls a step back"),
            ["min_channels"] = new("int", "8", "smallest group size"),
            ["mac_aware"] = new("bool", "false", "rank channels by importance per MAC saved (full-resolution layers first at equal importance)"),
            ["channel_multiple"] = new("int", "8", "groups of at least this many channels keep sizes that are multiples of it (1: single channels)"),
            ["distill"] = new("bool", "true", "distil from the unpruned model while fine-tuning"),
            ["train_limit"] = new("int", "(all)", "train faces used"),
        },
        ["finetune"] = new Dictionary<string, Key>
        {
            ["config"] = new("path", "(defaults)", "training config whose phases, loss weights and distill: section are used"),
            ["steps"] = new("int", "200", "fine-tuning steps when no config is given"),
            ["lr"] = new("double", "1e-4", "learning rate when no config is given"),
            ["distill"] = new("bool", "true", "also distil from the recipe's teacher while fine-tuning (false: the task losses only)"),
        },
        ["distill"] = new Dictionary<string, Key>
        {
            ["student"] = new("string", "current", "current (the model so far: e.g. the pruned one) or a built-in architecture"),
            ["config"] = new("path", "(defaults)", "training/distillation config for loss weights and phases"),
            ["steps"] = new("int", "200", "steps when no config is given"),
            ["features"] = new("list", "(none)", "feature pairs student_node=teacher_tensor"),
            ["attention_kv_pool"] = new("int", "1", "the student's attention pools keys/values over k×k cells (its cost, quadratic in positions, falls by k²); weights kept"),
            ["attention_kv_nodes"] = new("list", "(all)", "attention nodes that pool, when not all"),
            ["icnr"] = new("bool", "false", "with student_graph: fresh convs that feed a depth_to_space start with equal sub-pixels (ICNR), so the sub-pixel upsampling starts as nearest-neighbour instead of a checkerboard"),
            ["student_graph"] = new("path", "(none)", "a graph.json the student becomes: its parameters are copied from the student wherever name and shape match (ffc warm-start), the rest start fresh (seeded) — e.g. a new decoder ending"),
        },
        ["ptq"] = new Dictionary<string, Key>
        {
            ["calibration"] = new("int", "128", "calibration images"),
            ["method"] = new("string", "minmax", "minmax, percentile or entropy", CalibrationMethods),
            ["int8_skips"] = new("bool", "false", "also quantize adds, concats, resizes and gates"),
            ["keep_float"] = new("list", "(none)", "conv nodes kept float in addition to the default policy"),
            ["sensitivity_keep"] = new("int", "0", "sensitivity mode: keep the k convs whose INT8 costs most val PSNR float"),
            ["island_weights"] = new("string", "int8", "storage of attention/injection weights (compute stays float)", IslandStorage),
            ["full_range_weights"] = new("bool", "false", "8-bit weights instead of 7-bit (VNNI/ARM targets only)"),
            ["min_sqnr_db"] = new("double", "20", "stop, naming the value, when any quantized value's SQNR is below this; no INT8 model is written"),
        },
        ["qat"] = new Dictionary<string, Key>
        {
            ["config"] = new("path", "(defaults)", "training config whose phases, loss weights and qat: section are used"),
            ["steps"] = new("int", "300", "QAT fine-tuning steps when no config is given"),
            ["lr"] = new("double", "5e-5", "learning rate when no config is given"),
            ["distill"] = new("bool", "true", "match the float model's outputs while fine-tuning"),
            ["calibration"] = new("int", "128", "calibration images for the initial ranges"),
            ["calibration_method"] = new("string", "percentile", "minmax, percentile or entropy", CalibrationMethods),
            ["observer"] = new("string", "moving_average", "moving_average or minmax", ["moving_average", "minmax"]),
            ["freeze_after"] = new("int", "100", "steps after which observers freeze"),
            ["learnable_scales"] = new("bool", "false", "LSQ-style learnable activation scales"),
            ["int8_skips"] = new("bool", "false", "also quantize adds, concats, resizes and gates"),
            ["keep_float"] = new("list", "(none)", "conv nodes kept float in addition to the default policy"),
            ["sensitivity_keep"] = new("int", "0", "sensitivity mode: keep the k worst convs float"),
            ["sensitivity_threshold_db"] = new("double", "0", "sensitivity mode: keep float every conv whose drop exceeds this"),
            ["island_weights"] = new("string", "int8", "storage of attention/injection weights (compute stays float)", IslandStorage),
            ["full_range_weights"] = new("bool", "false", "8-bit weights instead of 7-bit (VNNI/ARM targets only)"),
            ["min_sqnr_db"] = new("double", "20", "stop, naming the value, when any quantized value's SQNR is below this; no INT8 model is written"),
        },
        ["export"] = new Dictionary<string, Key>
        {
            ["fp16"] = new("bool", "false", "also export FP16 (for GPU execution providers)"),
            ["merge_heads"] = new("bool", "false", "image and mask heads as one Conv + Split (a little faster; a per-tensor quantizer then gives both one scale)"),
        },
        ["bench"] = new Dictionary<string, Key>
        {
            ["pairs"] = new("int", "64", "evaluation pairs"),
            ["judge_full_frame"] = new("int", "8", "pairs of each judge set also judged through the whole ffc swap path (paste back, detect again, align), beside copy-target; 0: crop only"),
            ["judge_pairs"] = new("int", "64", "held-in pairs (both directions) for the swap judge's columns, beside a copy-target baseline; the unseen set is capped at the same number"),
            ["split"] = new("string", "test", "evaluation split", ["train", "val", "test"]),
            ["latency_rounds"] = new("int", "20", "interleaved rounds of each repeat of the speed-up timing (one run of each model per round)"),
            ["latency_repeats"] = new("int", "5", "repeats of the speed-up timing, each starting with the next model; the speed-up is the median of their ratios, with their range"),
            ["resolutions"] = new("int list", "(none)", "further input sizes (e.g. 256) at which every exported model is re-exported and timed in interleaved rounds: latency_by_resolution.csv and a speed-up target line per size"),
        },
        ["report"] = new Dictionary<string, Key>(),
    };

    public static readonly string[] StageKinds = Stages.Keys.ToArray();
}

/// <summary>Parses and validates recipes, reporting every problem with file, line and column.</summary>
public static class RecipeParser
{
    /// <param name="path">The recipe file; errors name it with line and column.</param>
    /// <param name="profile">A profile whose overrides are applied, or null.</param>
    /// <param name="teacherOverride">Replaces the recipe's `teacher:` (e.g. `ffc run --teacher`).</param>
    /// <param name="rootDir">When given, the files the recipe names (teacher, data, stage configs) must exist, resolved
    /// against this folder as the runner resolves them; a missing one is an error at its line like any other.</param>
    public static Recipe Load(string path, string? profile = null, string? teacherOverride = null, string? rootDir = null)
    {
        if (!File.Exists(path)) throw new RecipeException([new RecipeError(path, 0, 0, "recipe file not found")]);
        var text = File.ReadAllText(path);
        var errors = new List<RecipeError>();
        void Error(YamlNode? node, string message) => errors.Add(new RecipeError(path, node?.Start.Line ?? 0, node?.Start.Column ?? 0, message));

        YamlMappingNode root;
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            root = stream.Documents.FirstOrDefault()?.RootNode as YamlMappingNode
                   ?? throw new RecipeException([new RecipeError(path, 1, 1, "a recipe is a YAML mapping (name:, stages:, …)")]);
        }
        catch (YamlException e)
        {
            throw new RecipeException([new RecipeError(path, e.Start.Line, e.Start.Column, $"not valid YAML: {e.Message}")]);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or InvalidCastException)
        {
            // YamlDotNet reports some malformed documents (e.g. anchors gone wrong) this way.
            throw new RecipeException([new RecipeError(path, 0, 0, $"not valid YAML: {e.Message}")]);
        }

        var top = new Dictionary<string, YamlNode>();
        foreach (var (k, v) in root.Children)
        {
            var key = (k as YamlScalarNode)?.Value ?? "";
            if (!RecipeSchema.TopLevel.ContainsKey(key)) Error(k, $"unknown key '{key}' (known: {string.Join(", ", RecipeSchema.TopLevel.Keys)})");
            else top[key] = v;
        }
        foreach (var key in new[] { "name", "data", "teacher", "note" })
            if (top.TryGetValue(key, out var n) && n is not YamlScalarNode) Error(n, $"'{key}' must be a single value (a {RecipeSchema.TopLevel[key].Type})");
        string Scalar(string key, string fallback) => top.TryGetValue(key, out var n) && n is YamlScalarNode s ? s.Value ?? fallback : fallback;
        // Files the recipe names, checked for existence at the end when a root is given: (value, node, what it is).
        var inputs = new List<(string Value, YamlNode? Node, string What)>();
        int IntValue(string key, int fallback)
        {
            if (!top.TryGetValue(key, out var n)) return fallback;
            if (n is YamlScalarNode s && int.TryParse(s.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)) return v;
            Error(n, $"'{key}' must be an integer");
            return fallback;
        }
        int resolution = IntValue("resolution", 128);
        if (resolution < 32 || resolution % 16 != 0 || resolution > Models.Architectures.SwapperIO.MaxResolution)
            Error(top.GetValueOrDefault("resolution"), $"resolution {resolution} must be a multiple of 16 and at least 32 (at most {Models.Architectures.SwapperIO.MaxResolution})");
        int seed = IntValue("seed", 1);
        var data = Scalar("data", "datasets/bundled");
        var teacher = teacherOverride ?? (top.ContainsKey("teacher") ? Scalar("teacher", "") : null);
        if (teacher is not null) inputs.Add((teacher, teacherOverride is null ? top.GetValueOrDefault("teacher") : null, teacherOverride is null ? "teacher" : "--teacher"));
        inputs.Add((data, top.GetValueOrDefault("data"), "data"));

        ReportTargets? targets = null;
        if (top.TryGetValue("targets", out var targetsNode))
        {
            if (targetsNode is not YamlMappingNode tm) Error(targetsNode, $"'targets' must be a mapping ({string.Join(", ", RecipeSchema.Targets.Keys)})");
            else
            {
                targets = new ReportTargets();
                foreach (var (tk, tv) in tm.Children)
                {
                    var key = (tk as YamlScalarNode)?.Value ?? "";
                    if (!RecipeSchema.Targets.ContainsKey(key)) { Error(tk, $"unknown target '{key}' (known: {string.Join(", ", RecipeSchema.Targets.Keys)})"); continue; }
                    var (value, problem) = TargetValue(key, tv);
                    if (problem is not null) Error(tv, problem);
                    else targets = WithTarget(targets, key, value);
                }
            }
        }

        // Profiles: overrides "stage.key: value" applied to the first stage of that kind.
        var profiles = new Dictionary<string, List<(string Stage, string Key, string Value, YamlNode Node)>>();
        if (top.TryGetValue("profiles", out var profilesNode))
        {
            if (profilesNode is not YamlMappingNode pm) Error(profilesNode, "'profiles' must be a mapping of profile name → overrides");
            else
                foreach (var (pk, pv) in pm.Children)
                {
                    var profileName = (pk as YamlScalarNode)?.Value ?? "";
                    var list = profiles[profileName] = [];
                    if (pv is not YamlMappingNode overrides) { Error(pv, $"profile '{profileName}' must be a mapping of stage.key: value"); continue; }
                    foreach (var (ok, ov) in overrides.Children)
                    {
                        var dotted = (ok as YamlScalarNode)?.Value ?? "";
                        var parts = dotted.Split('.', 2);
                        if (parts.Length == 2 && parts[0] == "targets")
                        {
                            if (!RecipeSchema.Targets.ContainsKey(parts[1]))
                                Error(ok, $"profile '{profileName}': unknown target '{parts[1]}' (known: {string.Join(", ", RecipeSchema.Targets.Keys)})");
                            else list.Add(("targets", parts[1], ScalarOrList(ov), ov));
                        }
                        else if (parts.Length != 2 || !RecipeSchema.Stages.TryGetValue(parts[0], out var keys) || !keys.ContainsKey(parts[1]))
                            Error(ok, $"profile '{profileName}': '{dotted}' is not stage.key of a known stage and key");
                        else list.Add((parts[0], parts[1], ScalarOrList(ov), ov));
                    }
                }
        }
        if (profile is not null && !profiles.ContainsKey(profile))
            errors.Add(new RecipeError(path, 0, 0, $"profile '{profile}' is not defined (defined: {(profiles.Count == 0 ? "none" : string.Join(", ", profiles.Keys))})"));

        var stages = new List<RecipeStage>();
        if (!top.TryGetValue("stages", out var stagesNode) || stagesNode is not YamlSequenceNode seq || seq.Children.Count == 0)
            Error(stagesNode ?? root, "'stages' must be a non-empty list");
        else
            foreach (var item in seq.Children)
            {
                if (item is not YamlMappingNode sm) { Error(item, "each stage is a mapping with 'stage: KIND' and its keys"); continue; }
                var values = sm.Children.GroupBy(kv => (kv.Key as YamlScalarNode)?.Value ?? "").ToDictionary(g => g.Key, g => g.First());
                if (!values.TryGetValue("stage", out var kindPair) || kindPair.Value is not YamlScalarNode kindNode || !RecipeSchema.Stages.ContainsKey(kindNode.Value ?? ""))
                {
                    var given = (values.GetValueOrDefault("stage").Value as YamlScalarNode)?.Value;
                    Error(item, $"stage needs 'stage:' with one of {string.Join(", ", RecipeSchema.StageKinds)}{(given is null ? "" : $"; '{Printable(given)}' is not one")}");
                    continue;
                }
                var kind = kindNode.Value!;
                var schema = RecipeSchema.Stages[kind];
                var parameters = new Dictionary<string, string>();
                foreach (var (key, (kNode, vNode)) in values)
                {
                    if (key == "stage") continue;
                    if (!schema.TryGetValue(key, out var spec)) { Error(kNode, $"stage '{kind}': unknown key '{key}' (known: {string.Join(", ", schema.Keys)})"); continue; }
                    var value = ScalarOrList(vNode);
                    var problem = Check(spec, value) ?? Budget(kind, key, value);
                    if (problem is not null) Error(vNode, $"stage '{kind}': '{key}' {problem}");
                    else parameters[key] = value;
                    if (problem is null && spec.Type == "path") inputs.Add((value, vNode, $"stage '{kind}': '{key}'"));
                }
                if (kind == "prune" && new[] { "target_macs", "target_params", "target_latency_ms" }.Count(values.ContainsKey) != 1)
                    Error(item, "stage 'prune' needs exactly one of target_macs, target_params, target_latency_ms");
                if (kind == "train" && !values.ContainsKey("config"))
                    Error(item, "stage 'train' needs 'config'");
                stages.Add(new RecipeStage(kind, parameters));
            }

        if (profile is not null && profiles.TryGetValue(profile, out var chosen))
            foreach (var (stage, key, value, node) in chosen)
            {
                if (stage == "targets")
                {
                    // A profile's own bar (e.g. a lightweight profile judged by a larger speed-up): the recipe's targets, changed.
                    var (number, targetProblem) = TargetValue(key, node);
                    if (targetProblem is not null) Error(node, $"profile '{profile}': {targetProblem}");
                    else targets = WithTarget(targets ?? new ReportTargets(), key, number);
                    continue;
                }
                int index = stages.FindIndex(s => s.Kind == stage);
                if (index < 0) { Error(node, $"profile '{profile}' overrides '{stage}.{key}' but the recipe has no {stage} stage"); continue; }
                var spec = RecipeSchema.Stages[stage][key];
                var problem = Check(spec, value) ?? Budget(stage, key, value);
                if (problem is not null) { Error(node, $"profile '{profile}': '{stage}.{key}' {problem}"); continue; }
                if (spec.Type == "path") inputs.Add((value, node, $"profile '{profile}': '{stage}.{key}'"));
                stages[index] = stages[index] with { Parameters = new Dictionary<string, string>(stages[index].Parameters) { [key] = value } };
            }

        if (teacher is null && !stages.Any(s => s.Kind == "train"))
            Error(root, "no teacher: give 'teacher:' or a train stage");
        if (rootDir is not null)
            foreach (var (value, node, what) in inputs)
            {
                var full = System.IO.Path.IsPathRooted(value) ? value : System.IO.Path.GetFullPath(System.IO.Path.Combine(rootDir, value));
                if (what == "data" && !File.Exists(System.IO.Path.Combine(full, Data.FaceManifest.FileName)))
                    Error(node, $"data '{value}' is not a prepared dataset (no {Data.FaceManifest.FileName} in {full}; run `ffc data prepare` or `make setup`)");
                else if (what != "data" && !File.Exists(full) && !Directory.Exists(full))
                    Error(node, $"{what}: '{value}' not found ({full})");
            }
        // The run folder is artifacts/<name>[-<profile>]: both must be one folder name, never a path out of artifacts/.
        var name = Scalar("name", System.IO.Path.GetFileNameWithoutExtension(path));
        if (Assets.PathSegment.Problem(name) is { } nameProblem)
            Error(top.GetValueOrDefault("name") ?? root, $"name '{Printable(name)}' {nameProblem}; the run's name must be a single folder name under artifacts/");
        if (profile is not null && Assets.PathSegment.Problem(profile) is { } profileProblem)
            errors.Add(new RecipeError(path, 0, 0, $"profile '{Printable(profile)}' {profileProblem}; it must be a single folder name"));
        if (errors.Count > 0) throw new RecipeException(errors);

        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text + "|" + profile))).ToLowerInvariant()[..16];
        return new Recipe(path, name, hash, data, resolution, seed, teacher, profile, stages, profiles.Keys.ToList(), top.ContainsKey("note") ? Scalar("note", "") : null, targets);
    }

    private static string Printable(string value) => string.Concat(value.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));

    /// <summary>Budgets that no run can meet, whatever the model: a MAC/param fraction outside (0, 1], a negative drop.</summary>
    private static string? Budget(string kind, string key, string value)
    {
        if (kind == "prune" && key is "target_macs" or "target_params" or "target_latency_ms")
        {
            var metric = key["target_".Length..];
            try
            {
                var target = Pruning.PruneTarget.Parse(metric, value);
                if (!target.IsFraction && metric != Pruning.PruneTarget.LatencyMs && !value.Any(char.IsLetter))
                    return $"{value} is impossible (a fraction must be in (0, 1]; an absolute value takes a unit, e.g. 1.2G or 800M)";
            }
            catch (FormatException e) { return e.Message; }
        }
        if (key is "max_drop_db" or "max_id_drop" && double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var drop) && drop < 0)
            return $"{value} is impossible (a {(key == "max_drop_db" ? "PSNR" : "identity")} drop budget cannot be negative)";
        if (key is "latency_rounds" or "latency_repeats" && int.TryParse(value, CultureInfo.InvariantCulture, out var count) && count < 1)
            return $"{value} is impossible (at least one {(key == "latency_rounds" ? "round" : "repeat")} is needed to time anything)";
        if (key == "judge_pairs" && int.TryParse(value, CultureInfo.InvariantCulture, out var judgePairs) && judgePairs < 2)
            return $"{value} is impossible (held-in pairs go both ways: at least 2)";
        if (key == "attention_kv_pool" && int.TryParse(value, CultureInfo.InvariantCulture, out var pool) && pool < 1)
            return $"{value} is impossible (pooling over k×k cells needs k ≥ 1; 1 pools nothing)";
        // Counts: none is negative, and these need at least one (a zero-image calibration or zero pairs measures nothing).
        if (RecipeSchema.Stages.TryGetValue(kind, out var schema) && schema.TryGetValue(key, out var spec) && spec.Type == "int"
            && int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
        {
            bool positive = key is "calibration" or "pairs" or "eval_pairs" or "min_channels" or "channel_multiple" or "train_limit" or "judge_pairs";
            if (n < 0 || positive && n < 1) return $"{value} is impossible (a count of {(positive ? "at least 1" : "0 or more")})";
        }
        return null;
    }

    /// <summary>A target's value, or the error that names why no model could meet it.</summary>
    private static (double Value, string? Problem) TargetValue(string key, YamlNode node)
    {
        if (node is not YamlScalarNode { Value: { } number } || !double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            return (0, $"target '{key}' must be a number");
        var problem = key switch
        {
            "file_fraction" when value is <= 0 or > 1 => "a fraction must be in (0, 1]",
            "speedup" when value <= 0 => "a speed-up must be positive",
            "max_psnr_drop_db" or "max_id_drop" when value < 0 => "a drop budget cannot be negative",
            _ => null,
        };
        return problem is null ? (value, null) : (0, $"target '{key}': {number} is impossible ({problem})");
    }

    private static ReportTargets WithTarget(ReportTargets targets, string key, double value) => key switch
    {
        "file_fraction" => targets with { FileFraction = value },
        "speedup" => targets with { Speedup = value },
        "max_psnr_drop_db" => targets with { MaxPsnrDropDb = value },
        _ => targets with { MaxIdDrop = value },
    };

    private static string ScalarOrList(YamlNode node) => node switch
    {
        YamlScalarNode s => s.Value ?? "",
        YamlSequenceNode seq => string.Join(",", seq.Children.OfType<YamlScalarNode>().Select(c => c.Value)),
        _ => "",
    };

    private static string? Check(RecipeSchema.Key spec, string value) =>
        CheckType(spec.Type, value) ?? (spec.Choices is { } choices && !choices.Contains(value) ? $"'{value}' must be one of {string.Join(", ", choices)}" : null);

    private static string? CheckType(string type, string value) => type switch
    {
        "int" => int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _) ? null : $"must be an integer, got '{value}'",
        "double" => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) ? null : $"must be a finite number, got '{value}'",
        "bool" => bool.TryParse(value, out _) ? null : $"must be true or false, got '{value}'",
        "list" => value.Split(',').All(v => v.Trim().Length > 0) ? null : "must be a list",
        "int list" => value.Split(',').All(v => int.TryParse(v.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 16 && n % 16 == 0)
            ? null : $"must be a list of sizes that are multiples of 16 (e.g. 256), got '{value}'",
        _ => string.IsNullOrWhiteSpace(value) ? "must not be empty" : null,
    };
}
