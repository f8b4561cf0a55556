using FaceFusion.Compress.Export;
using Google.Protobuf;

using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Recipes;
using FaceFusion.Compress.Tests.Export;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Models;

/// <summary>Attention fusion with keys and values average-pooled over k×k cells (<see cref="GraphNode.KeyValuePool"/>).</summary>
public class AttentionPoolTests
{
    [Fact]
    public void Pooling_ChangesOnlyTheNamedAttentionNodes_KeepsTheHashOfUnpooledGraphs_AndCutsTheScoresMacs()
    {
        var graph = SwapperArchitectures.Teacher(64);
        var attention = graph.Nodes.Where(n => n.Op == Ops.AttentionFusion).Select(n => n.Name).ToList();
        Assert.True(attention.Count >= 2);
        // The field is left out of JSON at its default, so every existing checkpoint keeps its architecture hash.
        Assert.DoesNotContain("key_value_pool", graph.ToJson());
        Assert.Equal(graph.ArchitectureHash(), graph.WithAttentionKeyValuePool(1).ArchitectureHash());

        var pooled = graph.WithAttentionKeyValuePool(2, [attention[0]]);
        Assert.Equal(2, pooled.Node(attention[0]).EffectiveKeyValuePool);
        Assert.Equal(1, pooled.Node(attention[1]).EffectiveKeyValuePool);
        Assert.NotEqual(graph.ArchitectureHash(), pooled.ArchitectureHash());
        var reloaded = NetworkGraph.FromJson(pooled.ToJson());
        Assert.Equal(pooled.ArchitectureHash(), reloaded.ArchitectureHash());
        Assert.Equal(2, reloaded.Node(attention[0]).KeyValuePool);

        // Same parameters; the node's MACs by the formula: queries on every position, keys/values on n/4 of them.
        var shapes = ShapeInference.Infer(pooled, 64);
        Assert.Equal(ModelSummary.Of(graph, 64).Params, ModelSummary.Of(pooled, 64).Params);
        var node = pooled.Node(attention[0]);
        var (q, kv) = (shapes[node.Inputs[0]], shapes[node.Inputs[1]]);
        long n = kv.Positions, keys = n / 4, inner = node.InnerChannels, c = kv.Channels;
        long expected = n * q.Channels * inner + keys * (c * inner + c * c) + n * keys * inner + n * keys * c;
        var perNode = ModelSummary.Of(pooled, 64).Nodes.Single(r => r.Name == attention[0]);
        Assert.Equal(expected, perNode.Macs);
        Assert.True(ModelSummary.Of(pooled, 64).Macs < ModelSummary.Of(graph, 64).Macs);

        var e = Assert.Throws<ArgumentException>(() => graph.WithAttentionKeyValuePool(2, ["stem_conv"]));
        Assert.Contains("stem_conv is not an attention node", e.Message);
        Assert.Throws<ArgumentException>(() => graph.WithAttentionKeyValuePool(0));
        // A pool that does not divide the positions is refused where shapes are inferred, naming the node.
        var odd = Assert.Throws<InvalidDataException>(() => ShapeInference.Infer(graph.WithAttentionKeyValuePool(3), 64));
        Assert.Contains("does not divide", odd.Message);
    }

    [Fact]
    public void PooledAttention_MatchesItsDefinition_AndExportsWithParity()
    {
        // Pooling keys/values over 2×2 cells is the same as attending to a target downsampled by average pooling
        // (the 1×1 projections are linear), checked against the block written out by hand.
        torch.manual_seed(3);
        using var block = new AttentionFusionBlock("attn", 8, 6, 4, keyValuePool: 2);
        using var plain = new AttentionFusionBlock("attn", 8, 6, 4);
        plain.load_state_dict(block.state_dict());
        using (no_grad())
            foreach (var m in new[] { block, plain })
                foreach (var (name, p) in m.named_parameters()) if (name == "gamma") p.fill_(0.8f);
        using var scope = NewDisposeScope();
        var query = randn(2, 8, 8, 8);
        var target = randn(2, 6, 8, 8);
        Tensor actual;
        using (no_grad()) actual = block.call(query, target);
        var sd = block.state_dict();
        var pooledTarget = nn.functional.avg_pool2d(target, 2, 2);
        var q = nn.functional.conv2d(query, sd["query.weight"], sd["query.bias"]).flatten(2);
        var k = nn.functional.conv2d(pooledTarget, sd["key.weight"], sd["key.bias"]).flatten(2);
        var v = nn.functional.conv2d(pooledTarget, sd["value.weight"], sd["value.bias"]).flatten(2);
        var weights = bmm(q.transpose(1, 2), k).mul(1.0 / Math.Sqrt(4)).softmax(-1);       // [N, 64, 16]
        var expected = bmm(v, weights.transpose(1, 2)).view(2, 6, 8, 8).mul(0.8).add(target);
        Assert.True(actual.allclose(expected, rtol: 1e-4, atol: 1e-5));
        Tensor unpooled;
        using (no_grad()) unpooled = plain.call(query, target);
        Assert.False(actual.allclose(unpooled, rtol: 1e-3, atol: 1e-4)); // pooling does change the function

        // Exported: an AveragePool before the key/value projections, same outputs as TorchSharp at batch 1 and 3.
        var graph = SwapperArchitectures.Teacher(32).WithAttentionKeyValuePool(2);
        using var model = ExportParityTests.Prepared(graph);
        var proto = OnnxExporter.Export(model);
        Assert.Equal(graph.Nodes.Count(n => n.Op == Ops.AttentionFusion), proto.Graph.Node.Count(n => n.OpType == "AveragePool"));
        foreach (var batch in new[] { 1, 3 })
        {
            var inputs = GraphTests.SwapperInputs(batch, 32, seed: 5);
            Dictionary<string, Tensor> want;
            using (no_grad()) want = model.call(inputs);
            var got = ExportParityTests.RunOrt(proto.ToByteArray(), inputs);
            double psnr = ExportParityTests.Psnr(want["output"].data<float>().ToArray(), got["output"]);
            Assert.True(psnr >= 60, $"batch {batch}: {psnr:0.0} dB");
        }
    }

    [Fact]
    public void Rewrite_KeepsTheWeights_AndTheRecipeKeyIsValidated()
    {
        var dir = TestAssets.TempDir();
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32)))
            Checkpoint.Save(Path.Combine(dir, "src"), model);
        var graph = Checkpoint.Rewrite(Path.Combine(dir, "src"), Path.Combine(dir, "pooled"), g => g.WithAttentionKeyValuePool(2));
        using var original = Checkpoint.Load(Path.Combine(dir, "src"));
        using var pooled = Checkpoint.Load(Path.Combine(dir, "pooled"));
        Assert.Equal(graph.ArchitectureHash(), pooled.Graph.ArchitectureHash());
        Assert.All(original.state_dict(), kv => Assert.True(kv.Value.allclose(pooled.state_dict()[kv.Key], 0, 0), kv.Key));
        // An edit that changes parameters cannot reuse the weights, and says so.
        var e = Assert.Throws<InvalidOperationException>(() => Checkpoint.Rewrite(Path.Combine(dir, "src"), Path.Combine(dir, "bad"),
            g => g.WithNodes([g.Node("stem_conv") with { Channels = g.Node("stem_conv").Channels + 8 }])));
        Assert.Contains("changes parameters", e.Message);
        Assert.False(Directory.Exists(Path.Combine(dir, "bad")));

        // The CLI: a bad node name or a built-in student is refused with the cause, exit 1, nothing written.
        var output = Path.Combine(dir, "distilled");
        var (code, text) = Cli.CliTests.Ffc("distill", "--teacher", Path.Combine(dir, "src"), "--student", Path.Combine(dir, "src"),
            "--attention-kv-pool", "2", "--attention-kv-nodes", "dec9_attn", "-o", output);
        Assert.Equal(1, code);
        Assert.Contains("dec9_attn is not an attention node", text);
        (code, text) = Cli.CliTests.Ffc("distill", "--teacher", Path.Combine(dir, "src"), "--student", "student", "--attention-kv-pool", "2", "-o", output);
        Assert.Equal(1, code);
        Assert.Contains("needs --student to be a checkpoint folder", text);
        Assert.False(Directory.Exists(output));

        var recipe = Path.Combine(dir, "pool.yaml");
        File.WriteAllText(recipe, """
            name: pool
            teacher: somewhere
            stages:
              - stage: distill
                attention_kv_pool: 0
            """);
        var error = Assert.Single(Assert.Throws<RecipeException>(() => RecipeParser.Load(recipe)).Errors);
        Assert.Equal(5, error.Line);
        Assert.Contains("0 is impossible", error.Message);
    }
}
