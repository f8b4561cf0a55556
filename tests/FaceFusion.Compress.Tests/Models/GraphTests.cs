using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Models;

public class GraphTests
{
    internal static Dictionary<string, Tensor> SwapperInputs(int batch, int resolution, int seed = 7)
    {
        var gen = new Generator((ulong)seed);
        var source = randn(batch, 512, generator: gen);
        return new Dictionary<string, Tensor>
        {
            [SwapperIO.Target] = rand(batch, 3, resolution, resolution, generator: gen).mul(2).sub(1),
            [SwapperIO.Source] = source.div(source.norm(1, true, 2)),
        };
    }

    [Theory]
    [InlineData("teacher", 32)]
    [InlineData("teacher", 64)]
    [InlineData("student", 32)]
    [InlineData("student", 64)]
    public void Swappers_ProduceFaceFusionShapedOutputs(string name, int resolution)
    {
        torch.manual_seed(1);
        using var model = new GraphModule(SwapperArchitectures.Build(name, resolution));
        model.eval();
        using var scope = NewDisposeScope();
        var outputs = model.call(SwapperInputs(2, resolution));
        Assert.Equal([2L, 3, resolution, resolution], outputs[SwapperIO.Output].shape);
        Assert.Equal([2L, 1, resolution, resolution], outputs[SwapperIO.Mask].shape);
        Assert.True(outputs[SwapperIO.Output].abs().max().item<float>() <= 1f);
        var mask = outputs[SwapperIO.Mask];
        Assert.True(mask.min().item<float>() >= 0f && mask.max().item<float>() <= 1f);
    }

    [Fact]
    public void GraphJson_RoundTripsAndRebuildsIdenticalOutputs()
    {
        var dir = TestAssets.TempDir();
        torch.manual_seed(3);
        using var model = new GraphModule(SwapperArchitectures.Student(32));
        model.eval();
        Checkpoint.Save(dir, model);
        using var reloaded = Checkpoint.Load(dir);
        reloaded.eval();
        Assert.Equal(model.Graph.ToJson(), reloaded.Graph.ToJson());
        Assert.Equal(model.Graph.ArchitectureHash(), reloaded.Graph.ArchitectureHash());
        using var scope = NewDisposeScope();
        var inputs = SwapperInputs(2, 32);
        var a = model.call(inputs);
        var b = reloaded.call(inputs);
        Assert.True(a[SwapperIO.Output].eq(b[SwapperIO.Output]).all().item<bool>());
        Assert.True(a[SwapperIO.Mask].eq(b[SwapperIO.Mask]).all().item<bool>());
    }

    [Fact]
    public void MacsAndParams_MatchAHandComputedGraph()
    {
        var g = new GraphBuilder("tiny", 8);
        var x = g.ImageInput("image", 3);
        var v = g.VectorInput("id", 16);
        var c1 = g.Conv("c1", x, 4, kernel: 3);                       // 4·3·9 = 108 params; 108·64 = 6912 MACs
        var bn = g.BatchNorm("bn", c1);                                 // 8 params
        var dw = g.DepthwiseConv("dw", bn, kernel: 3, stride: 2);       // 4·9 = 36 params; 36·16 = 576 MACs (4×4 out)
        var pw = g.Conv("pw", dw, 6, kernel: 1, bias: true);            // 6·4 + 6 = 30 params; 24·16 = 384 MACs
        var inj = g.IdentityInjection("inj", pw, v);                    // 16·12 + 12 = 204 params; 192 MACs
        var att = g.AttentionFusion("att", inj, pw, 2);                 // q: 6·2+2, k: 6·2+2, v: 6·6+6, γ → 71 params
        g.Output("out", att);                                           // MACs 16·(12+12+36) + 16²·2 + 16²·6 = 960 + 512 + 1536 = 3008
        var summary = ModelSummary.Of(g.Build(), 8);
        long[] expectedParams = [108, 8, 36, 30, 204, 71];
        long[] expectedMacs = [6912, 0, 576, 384, 192, 3008];
        Assert.Equal(expectedParams, summary.Nodes.Select(n => n.Params));
        Assert.Equal(expectedMacs, summary.Nodes.Select(n => n.Macs));
        Assert.Equal(expectedParams.Sum(), summary.Params);

        // The built module has exactly as many parameters as counted (BN's running stats are buffers, not params).
        using var module = new GraphModule(g.Build());
        Assert.Equal(summary.Params, module.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void BuiltInParamCounts_MatchTheModules()
    {
        foreach (var name in SwapperArchitectures.Names)
        {
            var graph = SwapperArchitectures.Build(name, 64);
            using var module = new GraphModule(graph);
            Assert.Equal(ModelSummary.Of(graph, 64).Params, module.parameters().Sum(p => p.numel()));
        }
    }

    [Fact]
    public void Student_IsAtMostThirtyPercentOfTheTeacher()
    {
        foreach (var resolution in new[] { 128, 256 })
        {
            var teacher = ModelSummary.Of(SwapperArchitectures.Teacher(resolution), resolution);
            var student = ModelSummary.Of(SwapperArchitectures.Student(resolution), resolution);
            Assert.True(student.Params <= 0.3 * teacher.Params, $"params {student.Params} vs {teacher.Params}");
            Assert.True(student.Macs <= 0.3 * teacher.Macs, $"MACs {student.Macs} vs {teacher.Macs}");
            Assert.True(student.StageMacs("decoder") <= 0.3 * teacher.StageMacs("decoder"));
        }
    }

    [Fact]
    public void AttentionFusion_OnlyOnMapsOfAtMost32x32()
    {
        foreach (var name in SwapperArchitectures.Names)
            foreach (var resolution in new[] { 64, 128, 256 })
            {
                var graph = SwapperArchitectures.Build(name, resolution);
                var shapes = ShapeInference.Infer(graph, resolution);
                var attention = graph.Nodes.Where(n => n.Op == Ops.AttentionFusion).ToList();
                // The students and the first teacher fuse by attention; swap-teacher carries identity by injection alone.
                if (name != "swap-teacher") Assert.NotEmpty(attention);
                Assert.All(attention, n => Assert.True(shapes[n.Name].Positions <= 1024, $"{name}@{resolution}: {n.Name} at {shapes[n.Name]}"));
            }
    }

    [Fact]
    public void StudentDecoder_UsesOnlyDepthwiseSeparable3x3()
    {
        var graph = SwapperArchitectures.Student(128);
        var decoderConvs = graph.Nodes.Where(n => n.Op == Ops.Conv && n.Stage is "decoder" or "head").ToList();
        Assert.NotEmpty(decoderConvs);
        Assert.All(decoderConvs, n => Assert.True(n.Kernel == 1 || n.Depthwise, $"{n.Name} is a dense {n.Kernel}x{n.Kernel}"));
    }

    [Fact]
    public void AttentionBlock_IsTheIdentityOnTheTargetAtInit()
    {
        torch.manual_seed(5);
        using var block = new AttentionFusionBlock("attn", 12, 8, 2);
        using var scope = NewDisposeScope();
        var query = randn(2, 12, 4, 4);
        var target = randn(2, 8, 4, 4);
        Assert.True(block.call(query, target).eq(target).all().item<bool>());
        var gamma = block.named_parameters().Single(p => p.name == "gamma").parameter;
        Assert.Equal(0f, gamma.item<float>());
        using (no_grad()) gamma.fill_(0.5f);
        Assert.False(block.call(query, target).allclose(target));
    }

    [Fact]
    public void NewerFormatVersion_IsRefusedWithAClearMessage()
    {
        var json = SwapperArchitectures.Student(32).ToJson().Replace("\"format_version\": 1", "\"format_version\": 99");
        var e = Assert.Throws<InvalidDataException>(() => NetworkGraph.FromJson(json, "x/graph.json"));
        Assert.Contains("x/graph.json", e.Message);
        Assert.Contains("newer", e.Message);
        var missing = Assert.Throws<InvalidDataException>(() => NetworkGraph.FromJson("{\"name\":\"a\"}", "y.json"));
        Assert.Contains("format_version", missing.Message);
    }

    [Fact]
    public void BrokenGraphs_NameTheNode()
    {
        var graph = SwapperArchitectures.Student(32);
        var bad = graph.WithNodes([graph.Node("dec0_cat") with { Op = "fancy_op" }]);
        var e = Assert.Throws<InvalidDataException>(() => NetworkGraph.FromJson(bad.ToJson(), "g.json"));
        Assert.Contains("dec0_cat", e.Message);
        Assert.Contains("fancy_op", e.Message);
        var wrongAdd = graph.WithNodes([graph.Node("enc3b_projectbn") with { Inputs = ["enc2a_projectbn"] }]);
        var e2 = Assert.Throws<InvalidDataException>(() => wrongAdd.Validate("g2"));
        Assert.Contains("enc3b", e2.Message);
    }

    [Fact]
    public void WeightsOfAnotherArchitecture_AreRefused()
    {
        var dir = TestAssets.TempDir();
        using (var teacher = new GraphModule(SwapperArchitectures.Teacher(32))) Checkpoint.Save(dir, teacher);
        using var student = new GraphModule(SwapperArchitectures.Student(32));
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.LoadWeights(student, Path.Combine(dir, Checkpoint.WeightsFile)));
        Assert.Contains(Checkpoint.WeightsFile, e.Message);
    }
}
