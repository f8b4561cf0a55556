using System.Text.Json;
using System.Text.Json.Serialization;

namespace FaceFusion.Compress.Models.Graph;

/// <summary>Params and MACs of a graph at one resolution, per node, per stage and in total.</summary>
public sealed record ModelSummary(string Name, int Resolution, long Params, long Macs, IReadOnlyList<NodeCost> Nodes)
{
    public static ModelSummary Of(NetworkGraph graph, int resolution)
    {
        var costs = ShapeInference.Costs(graph, resolution);
        return new ModelSummary(graph.Name, resolution, costs.Sum(c => c.Params), costs.Sum(c => c.Macs), costs);
    }

    public long StageParams(string stage) => Nodes.Where(n => n.Stage == stage).Sum(n => n.Params);
    public long StageMacs(string stage) => Nodes.Where(n => n.Stage == stage).Sum(n => n.Macs);
    public IEnumerable<string> Stages => Nodes.Select(n => n.Stage ?? "-").Distinct();

    /// <summary>The `ffc info --json` document: {params, macs, nodes:[{name, kind, params, macs}]} plus extras.</summary>
    public string ToJson() => JsonSerializer.Serialize(new
    {
        name = Name,
        resolution = Resolution,
        @params = Params,
        macs = Macs,
        stages = Stages.ToDictionary(s => s, s => new { @params = Nodes.Where(n => (n.Stage ?? "-") == s).Sum(n => n.Params), macs = Nodes.Where(n => (n.Stage ?? "-") == s).Sum(n => n.Macs) }),
        nodes = Nodes.Select(n => new { name = n.Name, kind = n.Op, stage = n.Stage, output = n.Output.ToString(), @params = n.Params, macs = n.Macs }),
    }, new JsonSerializerOptions { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull });

    public static string Human(long v) => v switch
    {
        >= 1_000_000_000 => $"{v / 1e9:0.###}G",
        >= 1_000_000 => $"{v / 1e6:0.###}M",
        >= 1_000 => $"{v / 1e3:0.#}k",
        _ => v.ToString(),
    };
}
