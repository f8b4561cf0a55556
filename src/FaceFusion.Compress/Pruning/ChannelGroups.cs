using FaceFusion.Compress.Models.Graph;

namespace FaceFusion.Compress.Pruning;

/// <summary>Channel <see cref="Index"/> of channel group <see cref="Group"/>.</summary>
public readonly record struct ChannelRef(int Group, int Index);

/// <summary>
/// One parameter dimension whose entries follow a tensor's channels: pruning keeps the entries whose channel stays.
/// <see cref="Consumer"/> marks dimensions that read channels produced elsewhere (input channels of convs, linear
/// layers and projections): zeroing them is what "removing the channel" means in the unpruned network.
/// </summary>
public sealed record ParamDim(string Key, int Dim, ChannelRef[] Map, bool Consumer);

/// <summary>A set of channels that must be removed together.</summary>
public sealed record ChannelGroup(int Id, int Size, bool Prunable, string? Reason, IReadOnlyList<string> Producers, IReadOnlyList<string> Members);

/// <summary>
/// Derives from a graph every group of channels that must be cut together, dependency-aware: a conv's output
/// channels with the norms, activations and depthwise convs that follow and every consumer's input channels; both
/// operands of residual adds and gates (one group); concatenations map each input's channels to a range of the
/// output; attention fusion's value projection follows its target features and its query/key projections share an
/// inner group; identity injection's per-channel scale/shift rows follow their features. Network inputs and
/// outputs (and anything whose coupling this analysis cannot prove, e.g. grouped convs) are never pruned.
/// </summary>
public sealed class ChannelAnalysis
{
    private readonly List<int> _parent = [];
    private readonly List<int> _size = [];
    private readonly List<string?> _blocked = [];
    private readonly List<List<string>> _producers = [];
    private readonly Dictionary<string, ChannelRef[]> _maps = new();

    public NetworkGraph Graph { get; }
    public IReadOnlyList<ParamDim> Dims { get; }
    public IReadOnlyList<ChannelGroup> Groups { get; }

    public ChannelAnalysis(NetworkGraph graph)
    {
        Graph = graph;
        var shapes = ShapeInference.Infer(graph, graph.Resolution > 0 ? graph.Resolution : 64);
        var dims = new List<ParamDim>();
        foreach (var input in graph.Inputs) _maps[input.Name] = NewGroup(input.Channels, $"network input '{input.Name}'", input.Name);
        foreach (var node in graph.Nodes)
        {
            ChannelRef[] In(int i) => _maps[node.Inputs[i]];
            ChannelRef[] output;
            switch (node.Op)
            {
                case Ops.Conv when node.Depthwise:
                    output = In(0);
                    dims.Add(new ParamDim($"{node.Name}.weight", 0, output, false));
                    if (node.Bias) dims.Add(new ParamDim($"{node.Name}.bias", 0, output, false));
                    break;
                case Ops.Conv:
                    output = NewGroup(node.Channels, null, node.Name);
                    if (node.Groups != 1)
                    {
                        Block(output, $"grouped conv '{node.Name}'");
                        Block(In(0), $"grouped conv '{node.Name}'");
                    }
                    dims.Add(new ParamDim($"{node.Name}.weight", 0, output, false));
                    if (node.Groups == 1) dims.Add(new ParamDim($"{node.Name}.weight", 1, In(0), true));
                    if (node.Bias) dims.Add(new ParamDim($"{node.Name}.bias", 0, output, false));
                    break;
                case Ops.Linear:
                    output = NewGroup(node.Channels, null, node.Name);
                    dims.Add(new ParamDim($"{node.Name}.weight", 0, output, false));
                    dims.Add(new ParamDim($"{node.Name}.weight", 1, In(0), true));
                    if (node.Bias) dims.Add(new ParamDim($"{node.Name}.bias", 0, output, false));
                    break;
                case Ops.BatchNorm:
                    output = In(0);
                    foreach (var p in new[] { "weight", "bias", "running_mean", "running_var" }) dims.Add(new ParamDim($"{node.Name}.{p}", 0, output, false));
                    break;
                case Ops.PRelu:
                    output = In(0);
                    dims.Add(new ParamDim($"{node.Name}.weight", 0, output, false));
                    break;
                case Ops.Add:
                case Ops.Mul:
                    output = In(0);
                    for (int i = 1; i < node.Inputs.Count; i++) Tie(In(0), In(i), node.Name);
                    break;
                case Ops.Concat:
                    output = node.Inputs.SelectMany(i => _maps[i]).ToArray();
                    break;
                case Ops.Flatten:
                    if (shapes[node.Inputs[0]].Positions > 1)
                    {
                        Block(In(0), $"flatten '{node.Name}' mixes channels and positions");
                        output = NewGroup(shapes[node.Name].Channels, $"flatten '{node.Name}'", node.Name);
                    }
                    else output = In(0);
                    break;
                case Ops.DepthToSpace:
                case Ops.SpaceToDepth:
                    // Channels move to and from positions in blocks of scale²: kept whole (the convs around a sub-pixel
                    // upsampling are heads or inputs in the shipped graphs, so nothing prunable is lost).
                    Block(In(0), $"{node.Op} '{node.Name}' moves channels to positions");
                    output = NewGroup(shapes[node.Name].Channels, $"{node.Op} '{node.Name}'", node.Name);
                    break;
                case Ops.AttentionFusion:
                {
                    var inner = NewGroup(node.InnerChannels, null, $"{node.Name}.query");
                    _producers[inner[0].Group].Add($"{node.Name}.key");
                    output = In(1);
                    dims.Add(new ParamDim($"{node.Name}.query.weight", 0, inner, false));
                    dims.Add(new ParamDim($"{node.Name}.query.weight", 1, In(0), true));
                    dims.Add(new ParamDim($"{node.Name}.query.bias", 0, inner, false));
                    // Scores are Σ over inner channels of q·k: a zero key row removes that inner channel's term, so the
                    // key rows are the inner channels' consumers.
                    dims.Add(new ParamDim($"{node.Name}.key.weight", 0, inner, true));
                    dims.Add(new ParamDim($"{node.Name}.key.weight", 1, In(1), true));
                    dims.Add(new ParamDim($"{node.Name}.key.bias", 0, inner, true));
                    // The value projection's output is added to the target: it follows the target's channels.
                    dims.Add(new ParamDim($"{node.Name}.value.weight", 0, output, false));
                    dims.Add(new ParamDim($"{node.Name}.value.weight", 1, In(1), true));
                    dims.Add(new ParamDim($"{node.Name}.value.bias", 0, output, false));
                    break;
                }
                case Ops.IdentityInjection:
                {
                    output = In(0);
                    var rows = output.Concat(output).ToArray(); // scale rows, then shift rows
                    dims.Add(new ParamDim($"{node.Name}.style.weight", 0, rows, false));
                    dims.Add(new ParamDim($"{node.Name}.style.weight", 1, In(1), true));
                    dims.Add(new ParamDim($"{node.Name}.style.bias", 0, rows, false));
                    break;
                }
                default: // channel-wise: act, instance norm, resize, pools
                    output = In(0);
                    break;
            }
            _maps[node.Name] = output;
        }
        foreach (var o in graph.Outputs) Block(_maps[o.Node], $"network output '{o.Name}'");

        Dims = dims.Select(d => d with { Map = d.Map.Select(c => c with { Group = Find(c.Group) }).ToArray() }).ToList();
        var members = new Dictionary<int, HashSet<string>>();
        foreach (var d in Dims)
            foreach (var g in d.Map.Select(c => c.Group).Distinct())
                (members.TryGetValue(g, out var set) ? set : members[g] = []).Add(d.Key.Split('.')[0]);
        Groups = Enumerable.Range(0, _parent.Count).Where(g => Find(g) == g)
            .Select(g => new ChannelGroup(g, _size[g], _blocked[g] is null, _blocked[g],
                Enumerable.Range(0, _parent.Count).Where(x => Find(x) == g).SelectMany(x => _producers[x]).ToList(),
                members.TryGetValue(g, out var m) ? m.Order(StringComparer.Ordinal).ToList() : []))
            .ToList();
    }

    /// <summary>The channel map of a node's output (group and index of each channel).</summary>
    public ChannelRef[] MapOf(string node) => _maps[node].Select(c => c with { Group = Find(c.Group) }).ToArray();

    public ChannelGroup Group(int id) => Groups.First(g => g.Id == Find(id));

    private ChannelRef[] NewGroup(int size, string? blocked, string producer)
    {
        int id = _parent.Count;
        _parent.Add(id);
        _size.Add(size);
        _blocked.Add(blocked);
        _producers.Add([producer]);
        return Enumerable.Range(0, size).Select(i => new ChannelRef(id, i)).ToArray();
    }

    private int Find(int g)
    {
        while (_parent[g] != g) g = _parent[g] = _parent[_parent[g]];
        return g;
    }

    private void Block(ChannelRef[] map, string reason)
    {
        foreach (var g in map.Select(c => Find(c.Group)).Distinct()) _blocked[g] ??= reason;
    }

    private bool Whole(ChannelRef[] map) =>
        map.Length > 0 && map.Select(c => Find(c.Group)).Distinct().Count() == 1 && _size[Find(map[0].Group)] == map.Length
        && map.Select((c, i) => c.Index == i).All(x => x);

    /// <summary>Ties two channel maps one-to-one (residual add, gate). Only whole, aligned groups can be tied; others are blocked.</summary>
    private void Tie(ChannelRef[] a, ChannelRef[] b, string node)
    {
        if (a.Length != b.Length || !Whole(a) || !Whole(b))
        {
            Block(a, $"'{node}' couples partial groups");
            Block(b, $"'{node}' couples partial groups");
            return;
        }
        int ga = Find(a[0].Group), gb = Find(b[0].Group);
        if (ga == gb) return;
        _parent[gb] = ga;
        _blocked[ga] ??= _blocked[gb];
    }
}
