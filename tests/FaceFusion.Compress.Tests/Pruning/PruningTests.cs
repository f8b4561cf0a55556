using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Pruning;
using FaceFusion.Compress.Tests.Export;
using FaceFusion.Compress.Tests.Models;
using Google.Protobuf;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Pruning;

public class PruningTests
{
    private static int GroupOf(ChannelAnalysis analysis, string producer) =>
        analysis.Groups.Single(g => g.Producers.Contains(producer)).Id;

    /// <summary>Prunes a quarter of a group's channels and checks the result equals the masked unpruned network.</summary>
    private static void AssertPrunedEqualsMasked(string architecture, string producer, Action<ChannelGroup>? check = null, float sharpenAttention = 1f) =>
        AssertPrunedEqualsMasked(SwapperArchitectures.Build(architecture, 32), producer, check, sharpenAttention);

    /// <summary>The same for any swapper graph at 32 px (e.g. an edited architecture).</summary>
    internal static void AssertPrunedEqualsMasked(NetworkGraph graph, string producer, Action<ChannelGroup>? check = null, float sharpenAttention = 1f)
    {
        var architecture = graph.Name;
        using var model = ExportParityTests.Prepared(graph);
        // Random init gives near-uniform attention; sharpened scores make the inner channels matter.
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (name.Contains(".query.") || name.Contains(".key.")) p.mul_(sharpenAttention);
        var analysis = new ChannelAnalysis(model.Graph);
        int id = GroupOf(analysis, producer);
        var group = analysis.Group(id);
        Assert.True(group.Prunable, $"{producer}: {group.Reason}");
        check?.Invoke(group);
        var rng = new Random(id);
        var remove = Enumerable.Range(0, group.Size).OrderBy(_ => rng.Next()).Take(Math.Max(1, group.Size / 4)).Order().ToArray();
        var removal = new Dictionary<int, int[]> { [id] = remove };

        using var pruned = Pruner.Prune(model, removal, analysis);
        using var masked = model.Clone();
        Pruner.ZeroConsumers(masked, removal, analysis);
        using var scope = NewDisposeScope();
        var inputs = GraphTests.SwapperInputs(2, 32, seed: 21);
        // Probe the first node that reads the group without belonging to it (its output keeps its shape), and the outputs.
        var readers = analysis.Dims.Where(d => d.Consumer && d.Map.Any(c => c.Group == id)).Select(d => d.Key.Split('.')[0]).ToList();
        var probe = readers.FirstOrDefault(n => model.Graph.Node(n).Op == Ops.Conv) ?? readers.FirstOrDefault()
                    ?? analysis.Dims.First(d => d.Map.Any(c => c.Group == id)).Key.Split('.')[0];
        Dictionary<string, Tensor> a, b, original;
        using (no_grad())
        {
            a = pruned.Run(inputs, [probe]);
            b = masked.Run(inputs, [probe]);
            original = model.Run(inputs, [probe]);
        }
        foreach (var output in new[] { "output", "mask", probe })
        {
            float diff = a[output].sub(b[output]).abs().max().item<float>();
            Assert.True(diff <= 1e-5f, $"{architecture} {producer} {output}: max abs diff {diff}");
        }
        // Removing channels really changed the function where they are read: the equality is not trivially true.
        float change = a[probe].sub(original[probe]).abs().max().item<float>();
        Assert.True(change > 1e-3f, $"{producer}: pruning changed nothing at {probe} ({change})");
        // Removing the channels changed something (the test can fail), and the network is smaller.
        Assert.True(ModelSummary.Of(pruned.Graph, 32).Params < ModelSummary.Of(model.Graph, 32).Params);
    }

    [Fact]
    public void ResidualAdd_TiesBothOperands() =>
        AssertPrunedEqualsMasked("student", "enc3a_project", g => Assert.Contains("enc3b_project", g.Producers));

    [Fact]
    public void Depthwise_TiesInputAndOutput() =>
        AssertPrunedEqualsMasked("student", "enc2a_expand_conv", g => Assert.Contains("enc2a_dw", g.Members));

    [Fact]
    public void Concat_MapsInputsToRangesOfItsConsumers() =>
        AssertPrunedEqualsMasked("teacher", "dec2a_conv", g => Assert.Contains("dec1a_conv", g.Members));

    [Fact]
    public void AttentionFusion_ValueFollowsTargetAndQueryKeyShareTheInnerGroup()
    {
        AssertPrunedEqualsMasked("teacher", "enc2b_conv", g => Assert.Contains("dec2_attn", g.Members));
        AssertPrunedEqualsMasked("teacher", "dec3_attn.query", g => Assert.Contains("dec3_attn.key", g.Producers), sharpenAttention: 30f);
    }

    [Fact]
    public void IdentityInjection_ScaleAndShiftFollowTheirFeatures()
    {
        AssertPrunedEqualsMasked("teacher", "res0_conv1", g => Assert.Contains("res0_inject1", g.Members));
        // The bottleneck: enc4 and both residual branches are one group through the adds, with four injections.
        AssertPrunedEqualsMasked("teacher", "enc4_conv", g =>
        {
            Assert.Contains("res1_conv2", g.Producers);
            Assert.Contains("res1_inject2", g.Members);
        });
    }

    [Fact]
    public void SqueezeExcitationGate_TiesTheGateToItsFeatures() =>
        AssertPrunedEqualsMasked("student", "enc3b_se_expand", g => Assert.Contains("enc3b_expand_conv", g.Producers));

    [Fact]
    public void NetworkIoAndHeads_AreNeverPruned()
    {
        var analysis = new ChannelAnalysis(SwapperArchitectures.Student(64));
        Assert.False(analysis.Group(GroupOf(analysis, "output_conv")).Prunable);
        Assert.False(analysis.Group(GroupOf(analysis, "mask_conv")).Prunable);
        Assert.False(analysis.Group(GroupOf(analysis, "target")).Prunable);
        Assert.False(analysis.Group(GroupOf(analysis, "source")).Prunable);
        Assert.Contains(analysis.Groups, g => g.Prunable && g.Size >= 16);
        using var model = new GraphModule(SwapperArchitectures.Student(32));
        var id = GroupOf(new ChannelAnalysis(model.Graph), "output_conv");
        var e = Assert.Throws<InvalidOperationException>(() => Pruner.Prune(model, new Dictionary<int, int[]> { [id] = [0] }));
        Assert.Contains("network output", e.Message);
    }

    [Fact]
    public void ParamsAndMacs_AfterPruning_MatchHandComputedValues()
    {
        var g = new GraphBuilder("tiny", 8);
        var x = g.ImageInput("image", 3);
        var c1 = g.Conv("c1", x, 8, kernel: 3);
        var bn = g.BatchNorm("bn", c1);
        var act = g.Act("act", bn, Activations.Relu);
        g.Output("out", g.Conv("c2", act, 4, kernel: 1, bias: true));
        using var model = new GraphModule(g.Build());
        var analysis = new ChannelAnalysis(model.Graph);
        using var pruned = Pruner.Prune(model, new Dictionary<int, int[]> { [GroupOf(analysis, "c1")] = [1, 4, 6] });
        var summary = ModelSummary.Of(pruned.Graph, 8);
        // c1: 5·3·9 = 135 params, 135·64 = 8640 MACs; bn: 10; c2: 4·5 + 4 = 24 params, 20·64 = 1280 MACs.
        Assert.Equal([135L, 10, 0, 24], summary.Nodes.Select(n => n.Params));
        Assert.Equal([8640L, 0, 0, 1280], summary.Nodes.Select(n => n.Macs));
        Assert.Equal(summary.Params, pruned.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void PrunedNetwork_ReloadsFromItsFilesAndExportsWithParity()
    {
        using var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32));
        var analysis = new ChannelAnalysis(model.Graph);
        var removal = analysis.Groups.Where(g => g.Prunable && g.Size >= 8).ToDictionary(g => g.Id, g => Enumerable.Range(0, g.Size / 3).ToArray());
        using var pruned = Pruner.Prune(model, removal, analysis);
        Assert.True(ModelSummary.Of(pruned.Graph, 32).Macs < 0.8 * ModelSummary.Of(model.Graph, 32).Macs);

        var dir = TestAssets.TempDir();
        Checkpoint.Save(dir, pruned);
        using var reloaded = Checkpoint.Load(dir);
        reloaded.eval();
        using var scope = NewDisposeScope();
        var inputs = GraphTests.SwapperInputs(2, 32);
        Dictionary<string, Tensor> a, b;
        using (no_grad()) { a = pruned.call(inputs); b = reloaded.call(inputs); }
        Assert.True(a["output"].eq(b["output"]).all().item<bool>());

        var onnx = OnnxExporter.Export(reloaded).ToByteArray();
        var ort = ExportParityTests.RunOrt(onnx, inputs);
        double psnr = ExportParityTests.Psnr(a["output"].data<float>().ToArray(), ort["output"]);
        Assert.True(psnr >= 60, $"pruned export parity {psnr:0.0} dB");
    }
}
