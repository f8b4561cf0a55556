using FaceFusion.Compress.Assets;
using System.Text.Json;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Graph;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Models.Checkpoints;

/// <summary>
/// A model on disk: a folder with `graph.json` (the architecture, including any pruning) and `weights.safetensors`.
/// Any checkpoint reloads from these two files alone, without the code that built or pruned it.
/// </summary>
public static class Checkpoint
{
    public const string GraphFile = "graph.json";
    public const string WeightsFile = "weights.safetensors";

    /// <summary>Writes graph and weights (each through a temporary file and a rename).</summary>
    public static void Save(string dir, GraphModule model, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Directory.CreateDirectory(dir);
        var graphPath = Path.Combine(dir, GraphFile);
        AtomicFile.WriteAllText(graphPath, model.Graph.ToJson());
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>())
        {
            ["architecture_hash"] = model.Graph.ArchitectureHash(),
            ["format"] = "FaceFusion.Compress checkpoint",
        };
        SafeTensors.Save(Path.Combine(dir, WeightsFile), model.state_dict(), meta);
    }

    /// <summary>
    /// Writes to <paramref name="targetDir"/> the checkpoint at <paramref name="sourceDir"/> with its graph changed by
    /// <paramref name="edit"/>, which must keep every parameter's name and shape (e.g. attention key/value pooling).
    /// Returns the new graph; the target's weights are stamped with its architecture hash.
    /// </summary>
    public static NetworkGraph Rewrite(string sourceDir, string targetDir, Func<NetworkGraph, NetworkGraph> edit, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var source = Load(sourceDir);
        var graph = edit(source.Graph);
        graph.Validate($"{Path.Combine(sourceDir, GraphFile)} (edited)");
        using var target = new GraphModule(graph);
        var state = source.state_dict();
        var expected = target.state_dict();
        var changed = expected.Keys.Where(k => !state.TryGetValue(k, out var t) || !t.shape.SequenceEqual(expected[k].shape)).ToList();
        if (changed.Count > 0 || state.Count != expected.Count)
            throw new InvalidOperationException($"{sourceDir}: the edit changes parameters ({string.Join(", ", changed.Take(5))}); only parameter-free edits can reuse the weights");
        target.load_state_dict(state);
        Save(targetDir, target, metadata);
        return graph;
    }

    /// <summary>
    /// Builds <paramref name="graph"/> with a seeded initialisation and copies into it, from the checkpoint at
    /// <paramref name="sourceDir"/>, every parameter and buffer whose name and shape match: an architecture edit (a new
    /// decoder ending, a wider layer) keeps what it can of a trained model and trains the rest from scratch. Refused
    /// when nothing matches (the graph is then not an edit of that model). The caller disposes the returned module.
    /// </summary>
    /// <remarks>
    /// With <paramref name="icnr"/>, a fresh conv that feeds a depth_to_space starts with the r² sub-pixels of each
    /// output channel equal (ICNR: the upsampling then starts as a nearest-neighbour one), which avoids the
    /// checkerboard that independently initialised sub-pixels leave early in training.
    /// </remarks>
    public static WarmStart WarmStartFrom(NetworkGraph graph, string sourceDir, long seed, bool icnr = false)
    {
        graph.Validate("warm-start graph");
        using var source = Load(sourceDir);
        torch.manual_seed(seed);
        var target = new GraphModule(graph);
        try
        {
            var from = source.state_dict();
            var copied = new List<string>();
            var fresh = new List<string>();
            using (no_grad())
            {
                foreach (var (name, tensor) in target.state_dict())
                {
                    if (from.TryGetValue(name, out var s) && s.shape.SequenceEqual(tensor.shape)) { tensor.copy_(s); copied.Add(name); }
                    else fresh.Add(name);
                }
            }
            if (copied.Count == 0)
                throw new InvalidDataException($"{sourceDir}: no parameter matches the new graph by name and shape, so nothing would be warm-started");
            if (icnr) SubPixelInit(target, fresh);
            var unused = from.Keys.Except(copied).ToList();
            return new WarmStart(target, copied, fresh, unused);
        }
        catch { target.Dispose(); throw; }
    }

    /// <summary>
    /// ICNR for the fresh convs a depth_to_space reads, directly or through element-wise ops (activations, products,
    /// sums: a gate blended before the move): weights and bias repeated over each channel's r² sub-pixels, in the
    /// move's channel order (CRD: channel c·r²+s; DCR: s·C+c).
    /// </summary>
    internal static void SubPixelInit(GraphModule model, IReadOnlyCollection<string> fresh)
    {
        var state = model.state_dict();
        var shapes = ShapeInference.Infer(model.Graph, model.Graph.Resolution > 0 ? model.Graph.Resolution : 64);
        using var _ = no_grad();
        var done = new HashSet<string>();
        foreach (var move in model.Graph.Nodes.Where(n => n.Op == Ops.DepthToSpace))
        {
            long blocks = (long)move.Scale * move.Scale;
            int movedChannels = shapes[move.Inputs[0]].Channels;
            bool dcr = move.Mode == DepthToSpaceModes.Dcr;
            var pending = new Stack<string>([move.Inputs[0]]);
            while (pending.Count > 0)
            {
                var name = pending.Pop();
                if (model.Graph.Nodes.All(n => n.Name != name)) continue; // a graph input
                var node = model.Graph.Node(name);
                if (node.Op is Ops.Act or Ops.Mul or Ops.Add)
                {
                    foreach (var input in node.Inputs) pending.Push(input);
                    continue;
                }
                if (node.Op != Ops.Conv || node.Channels != movedChannels || !fresh.Contains($"{node.Name}.weight") || !done.Add(node.Name)) continue;
                foreach (var key in new[] { $"{node.Name}.weight", $"{node.Name}.bias" }.Where(state.ContainsKey))
                {
                    var t = state[key]; // the module's own parameter: not disposed here
                    var shape = t.shape;
                    long channels = shape[0] / blocks;
                    // Every sub-pixel s takes sub-pixel 0's values: CRD groups a channel's sub-pixels, DCR strides them.
                    using var grouped = dcr ? t.reshape([blocks, channels, .. shape[1..]]) : t.reshape([channels, blocks, .. shape[1..]]);
                    using var first = grouped.narrow(dcr ? 0 : 1, 0, 1);
                    using var repeated = first.expand(grouped.shape).reshape(shape);
                    t.copy_(repeated);
                }
            }
        }
    }

    /// <summary>Reads the graph of a checkpoint folder.</summary>
    public static NetworkGraph LoadGraph(string dir)
    {
        var path = Path.Combine(dir, GraphFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: not a checkpoint (no {GraphFile})", path);
        return NetworkGraph.FromJson(File.ReadAllText(path), path);
    }

    /// <summary>Builds the module from the checkpoint's graph and loads its weights. The caller disposes the module.</summary>
    public static GraphModule Load(string dir)
    {
        var model = new GraphModule(LoadGraph(dir));
        try { LoadWeights(model, Path.Combine(dir, WeightsFile)); }
        catch { model.Dispose(); throw; }
        return model;
    }

    /// <summary>Copies weights into a module; every key must match by name and shape, both ways.</summary>
    public static void LoadWeights(GraphModule model, string weightsPath)
    {
        var tensors = SafeTensors.Load(weightsPath, out var metadata);
        try
        {
            if (metadata.TryGetValue("architecture_hash", out var hash) && hash != model.Graph.ArchitectureHash())
                throw new InvalidDataException($"{weightsPath}: weights belong to architecture {hash}, not {model.Graph.ArchitectureHash()} ({Checkpoint.GraphFile} and weights do not match)");
            var state = model.state_dict();
            var missing = state.Keys.Except(tensors.Keys).ToList();
            var unexpected = tensors.Keys.Except(state.Keys).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new InvalidDataException($"{weightsPath}: weights do not match the graph (missing: {string.Join(", ", missing.Take(5))}; unexpected: {string.Join(", ", unexpected.Take(5))})");
            using (no_grad())
            {
                foreach (var (name, target) in state)
                {
                    var source = tensors[name];
                    if (!source.shape.SequenceEqual(target.shape))
                        throw new InvalidDataException($"{weightsPath}: '{name}' has shape [{string.Join(",", source.shape)}], the graph needs [{string.Join(",", target.shape)}]");
                    // Converting would turn, e.g., integer bytes into float weights without a word: the file is refused.
                    if (source.dtype != target.dtype)
                        throw new InvalidDataException($"{weightsPath}: '{name}' is stored as {source.dtype}, the graph needs {target.dtype}");
                    target.copy_(source.to(target.dtype));
                }
            }
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>
    /// Resolves a MODEL argument: a checkpoint folder (or its graph.json), or a built-in architecture name
    /// (`teacher`, `student`) built at <paramref name="resolution"/>.
    /// </summary>
    public static NetworkGraph ResolveGraph(string model, int resolution)
    {
        if (Directory.Exists(model)) return LoadGraph(model);
        if (File.Exists(model) && model.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return NetworkGraph.FromJson(File.ReadAllText(model), model);
        if (SwapperArchitectures.Names.Contains(model)) return SwapperArchitectures.Build(model, resolution);
        throw new FileNotFoundException($"{model}: neither a checkpoint folder nor a built-in architecture ({string.Join(", ", SwapperArchitectures.Names)})");
    }
}

/// <summary>
/// The result of <see cref="Checkpoint.WarmStartFrom"/>: the new module (the caller disposes it), the state-dict keys
/// copied from the source, those initialised fresh, and the source's keys that found no place.
/// </summary>
public sealed record WarmStart(GraphModule Model, IReadOnlyList<string> Copied, IReadOnlyList<string> Fresh, IReadOnlyList<string> Unused);
