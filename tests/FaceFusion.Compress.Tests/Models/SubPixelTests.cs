using FaceFusion.Compress.Export;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Pruning;
using FaceFusion.Compress.Quantization;
using FaceFusion.Compress.Recipes;
using FaceFusion.Compress.Tests.Export;
using FaceFusion.Compress.Tests.Pruning;
using Google.Protobuf;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Models;

/// <summary>
/// The sub-pixel decoder ending: <see cref="Ops.SpaceToDepth"/> brings the target image to half resolution,
/// <see cref="Ops.DepthToSpace"/> turns the heads' r²·C channels into C full-resolution ones; and
/// <see cref="Checkpoint.WarmStartFrom"/>, which starts such an edited graph from a trained model.
/// </summary>
public class SubPixelTests
{
    /// <summary>
    /// The teacher with its full-resolution ending (dec0 and the heads) replaced as recipes/graphs/lightweight-subpixel.json
    /// does it: target → space_to_depth, concat with dec1b, two convs at half resolution, heads through depth_to_space.
    /// </summary>
    internal static NetworkGraph SubPixelTeacher(int resolution, int width = 16)
    {
        var teacher = SwapperArchitectures.Teacher(resolution);
        var replaced = new HashSet<string> { "dec0_up", "dec0_cat", "dec0a_conv", "dec0a_bn", "dec0a_act", "dec0b_conv", "dec0b_bn", "dec0b_act",
            "output_conv", "output_tanh", "mask_conv", "mask_sigmoid" };
        Assert.All(replaced, n => teacher.Node(n)); // the names this edit relies on exist
        replaced.Add("dec0_attn"); // at 32 px the teacher attends at full resolution too (at 128 px it does not)
        var nodes = teacher.Nodes.Where(n => !replaced.Contains(n.Name)).ToList();
        GraphNode Conv(string name, string input, int channels, bool head = false) =>
            new() { Name = name, Op = Ops.Conv, Inputs = [input], Channels = channels, Kernel = 3, Padding = 1, Bias = head, Stage = head ? "head" : "decoder" };
        GraphNode Node(string name, string op, string input, string? activation = null, bool head = false) =>
            new() { Name = name, Op = op, Inputs = [input], Activation = activation, Alpha = activation == Activations.LeakyRelu ? 0.2f : 0, Scale = op is Ops.DepthToSpace or Ops.SpaceToDepth ? 2 : 0, Epsilon = op == Ops.BatchNorm ? 1e-5f : 0, Stage = head ? "head" : "decoder" };
        nodes.Add(Node("dec0_s2d", Ops.SpaceToDepth, SwapperIO.Target));
        nodes.Add(new GraphNode { Name = "dec0_cat", Op = Ops.Concat, Inputs = ["dec1b_act", "dec0_s2d"], Stage = "decoder" });
        string previous = "dec0_cat";
        foreach (var layer in new[] { "sub0a", "sub0b" })
        {
            nodes.Add(Conv($"{layer}_conv", previous, width));
            nodes.Add(Node($"{layer}_bn", Ops.BatchNorm, $"{layer}_conv"));
            nodes.Add(Node($"{layer}_act", Ops.Act, $"{layer}_bn", Activations.LeakyRelu));
            previous = $"{layer}_act";
        }
        nodes.Add(Conv("output_conv", previous, 12, head: true));
        nodes.Add(Node("output_d2s", Ops.DepthToSpace, "output_conv", head: true));
        nodes.Add(Node("output_tanh", Ops.Act, "output_d2s", Activations.Tanh, head: true));
        nodes.Add(Conv("mask_conv", previous, 4, head: true));
        nodes.Add(Node("mask_d2s", Ops.DepthToSpace, "mask_conv", head: true));
        nodes.Add(Node("mask_sigmoid", Ops.Act, "mask_d2s", Activations.Sigmoid, head: true));
        var graph = teacher with { Name = "teacher-subpixel", Nodes = nodes };
        graph.Validate("sub-pixel teacher");
        return graph;
    }

    /// <summary>
    /// <see cref="SubPixelTeacher"/> with recipes/graphs/lightweight-subpixel-skip.json's gated target skip: output =
    /// sigmoid(a)·tanh(generated) + sigmoid(b)·target, a and b from 1×1 sub-pixel convs on sub0b.
    /// </summary>
    internal static NetworkGraph SkipTeacher(int resolution)
    {
        var graph = SubPixelTeacher(resolution);
        GraphNode Head(string name, string op, string[] inputs, string? activation = null) =>
            new() { Name = name, Op = op, Inputs = inputs, Activation = activation, Channels = op == Ops.Conv ? 12 : 0, Kernel = 1, Bias = op == Ops.Conv, Scale = op == Ops.DepthToSpace ? 2 : 0, Stage = "head" };
        var nodes = graph.Nodes.ToList();
        foreach (var gate in new[] { "gen_gate", "target_gate" })
        {
            nodes.Add(Head($"{gate}_conv", Ops.Conv, ["sub0b_act"]));
            nodes.Add(Head($"{gate}_d2s", Ops.DepthToSpace, [$"{gate}_conv"]));
            nodes.Add(Head($"{gate}_sigmoid", Ops.Act, [$"{gate}_d2s"], Activations.Sigmoid));
        }
        nodes.Add(Head("gen_gated", Ops.Mul, ["output_tanh", "gen_gate_sigmoid"]));
        nodes.Add(Head("target_gated", Ops.Mul, [SwapperIO.Target, "target_gate_sigmoid"]));
        nodes.Add(Head("output_blend", Ops.Add, ["gen_gated", "target_gated"]));
        var skip = graph with { Name = "teacher-subpixel-skip", Nodes = nodes, Outputs = graph.Outputs.Select(o => o.Name == SwapperIO.Output ? o with { Node = "output_blend" } : o).ToList() };
        skip.Validate("gated-skip teacher");
        return skip;
    }

    [Fact]
    public void GatedTargetSkip_PassesTheTargetThroughAtFullResolution_AndExportsWithParity()
    {
        // The shipped graph is the sub-pixel one plus exactly these gate nodes, output moved to the blend.
        var root = FaceFusion.Compress.Assets.AssetPaths.FindRepositoryRoot()!;
        NetworkGraph Shipped(string name) => NetworkGraph.FromJson(File.ReadAllText(Path.Combine(root, "recipes", "graphs", name)), name);
        var (plain, shipped) = (Shipped("lightweight-subpixel.json"), Shipped("lightweight-subpixel-skip.json"));
        var added = shipped.Nodes.Select(n => n.Name).Except(plain.Nodes.Select(n => n.Name)).Order();
        Assert.Equal(new[] { "gen_gate_conv", "gen_gate_d2s", "gen_gate_sigmoid", "gen_gated", "output_blend", "target_gate_conv", "target_gate_d2s", "target_gate_sigmoid", "target_gated" }, added);
        Assert.Equal("output_blend", shipped.Outputs.Single(o => o.Name == SwapperIO.Output).Node);
        Assert.Equal(new TensorShape(3, 128, 128), ShapeInference.Infer(shipped, 128)["output_blend"]);

        // Gates shut on the generated image and open on the target: the output is the target, pixel for pixel.
        var graph = SkipTeacher(32);
        using var model = ExportParityTests.Prepared(graph);
        using (no_grad())
        {
            var state = model.state_dict();
            foreach (var (gate, bias) in new[] { ("gen_gate_conv", -40.0), ("target_gate_conv", 40.0) })
            {
                state[$"{gate}.weight"].zero_();
                state[$"{gate}.bias"].fill_(bias);
            }
        }
        var inputs = GraphTests.SwapperInputs(2, 32, seed: 4);
        using (no_grad())
        {
            var passed = model.call(inputs)[SwapperIO.Output];
            Assert.True(passed.allclose(inputs[SwapperIO.Target], rtol: 0, atol: 1e-6));
        }

        // With live gates: ONNX Runtime computes the same blend.
        using var live = ExportParityTests.Prepared(graph);
        var proto = OnnxExporter.Export(live);
        Assert.Equal(4, proto.Graph.Node.Count(n => n.OpType == "DepthToSpace"));
        Dictionary<string, Tensor> want;
        using (no_grad()) want = live.call(inputs);
        var got = ExportParityTests.RunOrt(proto.ToByteArray(), inputs);
        double psnr = ExportParityTests.Psnr(want[SwapperIO.Output].data<float>().ToArray(), got[SwapperIO.Output]);
        Assert.True(psnr >= 60, $"output: {psnr:0.0} dB");
    }

    [Fact]
    public void DepthToSpaceAndSpaceToDepth_FollowOnnxIndexOrder_AndBadShapesAreRefusedNamingTheNode()
    {
        using var scope = NewDisposeScope();
        const int r = 2;
        var x = arange(2 * 8 * 3 * 5).reshape(2, 8, 3, 5).to(float32);
        var up = GraphOps.DepthToSpace(x, r);
        Assert.Equal(new long[] { 2, 2, 6, 10 }, up.shape);
        var down = GraphOps.SpaceToDepth(up, r);
        Assert.Equal(new long[] { 2, 8, 3, 5 }, down.shape);
        var (a, b, c) = (x.data<float>().ToArray(), up.data<float>().ToArray(), down.data<float>().ToArray());
        for (int n = 0; n < 2; n++)
            for (int ch = 0; ch < 2; ch++)
                for (int h = 0; h < 3; h++)
                    for (int w = 0; w < 5; w++)
                        for (int i = 0; i < r; i++)
                            for (int j = 0; j < r; j++)
                            {
                                // DepthToSpace, CRD: out[c, h·r+i, w·r+j] = in[c·r²+i·r+j, h, w]
                                float input = a[((n * 8 + ch * r * r + i * r + j) * 3 + h) * 5 + w];
                                Assert.Equal(input, b[((n * 2 + ch) * 6 + h * r + i) * 10 + w * r + j]);
                                // SpaceToDepth: out[(i·r+j)·C+c, h, w] = in[c, h·r+i, w·r+j] — a different channel order,
                                // so the two are not inverses of each other.
                                Assert.Equal(b[((n * 2 + ch) * 6 + h * r + i) * 10 + w * r + j], c[((n * 8 + (i * r + j) * 2 + ch) * 3 + h) * 5 + w]);
                            }
        Assert.False(down.eq(x).all().item<bool>());

        var graph = SubPixelTeacher(32);
        var shapes = ShapeInference.Infer(graph, 32);
        Assert.Equal(new TensorShape(12, 16, 16), shapes["dec0_s2d"]);
        Assert.Equal(new TensorShape(3, 32, 32), shapes["output_tanh"]);
        Assert.Equal(new TensorShape(1, 32, 32), shapes["mask_sigmoid"]);
        // Data movement: no parameters, no MACs; the ending costs a quarter of the positions it replaced.
        var summary = ModelSummary.Of(graph, 32);
        Assert.All(summary.Nodes.Where(n => n.Op is Ops.DepthToSpace or Ops.SpaceToDepth), n => Assert.Equal((0L, 0L), (n.Params, n.Macs)));
        Assert.True(summary.Macs < ModelSummary.Of(SwapperArchitectures.Teacher(32), 32).Macs);

        var odd = Assert.Throws<InvalidDataException>(() => ShapeInference.Infer(graph.WithNodes([graph.Node("mask_conv") with { Channels = 3 }]), 32));
        Assert.Contains("mask_d2s", odd.Message);
        Assert.Contains("blocks of 2²", odd.Message);
        var indivisible = Assert.Throws<InvalidDataException>(() => ShapeInference.Infer(graph.WithNodes([graph.Node("dec0_s2d") with { Scale = 3 }]), 32));
        Assert.Contains("dec0_s2d", indivisible.Message);
        Assert.Contains("does not divide", indivisible.Message);
    }

    [Fact]
    public void DepthToSpaceDcr_InvertsSpaceToDepth_ExportsAndImportsWithItsMode_AndBadModesAreRefused()
    {
        using var scope = NewDisposeScope();
        var x = randn(2, 3, 8, 6);
        var down = GraphOps.SpaceToDepth(x, 2);
        Assert.True(GraphOps.DepthToSpace(down, 2, dcr: true).eq(x).all().item<bool>());
        Assert.False(GraphOps.DepthToSpace(down, 2).eq(x).all().item<bool>()); // CRD is another order

        // A half-resolution gate on the space_to_depth'd image, then one DCR move up: what ONNX Runtime computes too,
        // and what the importer reads back (mode kept).
        var builder = new GraphBuilder("dcr", 32);
        var image = builder.ImageInput("image", 3);
        var down2 = builder.SpaceToDepth("down", image);
        var gate = builder.Conv("gate", down2, 12, kernel: 1, padding: 0, bias: true);
        builder.Output("out", builder.DepthToSpace("up", builder.Multiply("gated", down2, gate), mode: DepthToSpaceModes.Dcr));
        var graph = builder.Build();
        torch.manual_seed(5);
        using var model = new GraphModule(graph);
        var proto = OnnxExporter.Export(model);
        Assert.Equal("DCR", proto.Graph.Node.Single(n => n.OpType == "DepthToSpace").Attribute.Single(a => a.Name == "mode").S.ToStringUtf8());
        var inputs = new Dictionary<string, Tensor> { ["image"] = randn(2, 3, 32, 32) };
        Tensor want;
        using (no_grad()) want = model.call(inputs)["out"];
        var got = ExportParityTests.RunOrt(proto.ToByteArray(), inputs);
        Assert.True(ExportParityTests.Psnr(want.data<float>().ToArray(), got["out"]) >= 60);
        var path = Path.Combine(TestAssets.TempDir(), "dcr.onnx");
        File.WriteAllBytes(path, proto.ToByteArray());
        var imported = FaceFusion.Compress.Models.Import.OnnxImporter.Import(path);
        Assert.Equal(DepthToSpaceModes.Dcr, imported.Graph.Nodes.Single(n => n.Op == Ops.DepthToSpace).Mode);
        Assert.Equal(graph.Nodes.Single(n => n.Op == Ops.DepthToSpace).Mode, NetworkGraph.FromJson(graph.ToJson()).Nodes.Single(n => n.Op == Ops.DepthToSpace).Mode);

        // ICNR follows the gate through the product to the DCR move: sub-pixel s of channel c is row s·3+c, all s equal.
        Checkpoint.SubPixelInit(model, model.state_dict().Keys.ToList());
        var w = model.state_dict()["gate.weight"].reshape(4, 3, 12);
        Assert.True(w.eq(w.narrow(0, 0, 1)).all().item<bool>());
        Assert.False(w.eq(w.narrow(1, 0, 1)).all().item<bool>()); // colour channels stay distinct

        var unknown = Assert.Throws<InvalidDataException>(() => graph.WithNodes([graph.Node("up") with { Mode = "abc" }]).Validate("g"));
        Assert.Contains("node 'up' has unknown depth_to_space mode 'abc'", unknown.Message);
        var misplaced = Assert.Throws<InvalidDataException>(() => graph.WithNodes([graph.Node("down") with { Mode = "dcr" }]).Validate("g"));
        Assert.Contains("node 'down' (space_to_depth) has a mode", misplaced.Message);
    }

    [Fact]
    public void SubPixelEnding_ExportsWithParity_InFp32AndInt8_AndImportsBack()
    {
        var graph = SubPixelTeacher(32);
        using var model = ExportParityTests.Prepared(graph);
        var proto = OnnxExporter.Export(model);
        Assert.Equal(1, proto.Graph.Node.Count(n => n.OpType == "SpaceToDepth"));
        // The image and mask heads merge into one conv, split, then each goes through its own DepthToSpace.
        Assert.Equal(2, proto.Graph.Node.Count(n => n.OpType == "DepthToSpace"));
        Assert.All(proto.Graph.Node.Where(n => n.OpType == "DepthToSpace"), n => Assert.Equal("CRD", n.Attribute.Single(a => a.Name == "mode").S.ToStringUtf8()));
        using var scope = NewDisposeScope();
        foreach (var batch in new[] { 1, 3 })
        {
            var inputs = GraphTests.SwapperInputs(batch, 32, seed: 9);
            Dictionary<string, Tensor> want;
            using (no_grad()) want = model.call(inputs);
            var got = ExportParityTests.RunOrt(proto.ToByteArray(), inputs);
            foreach (var output in new[] { "output", "mask" })
            {
                double psnr = ExportParityTests.Psnr(want[output].data<float>().ToArray(), got[output]);
                Assert.True(psnr >= 60, $"batch {batch} {output}: {psnr:0.0} dB");
            }
        }

        // INT8: the half-resolution convs and the heads run as integer kernels; the moves stay float by default.
        var int8 = PostTrainingQuantizer.Quantize(model, TinyDataset.Path, 8, CalibrationMethod.MinMax);
        var bytes = int8.ToByteArray();
        var kernels = PostTrainingQuantizer.InspectKernels(bytes);
        Assert.True(kernels.OpCounts.GetValueOrDefault("QLinearConv") >= 20, string.Join(", ", kernels.OpCounts.Select(kv => $"{kv.Key}×{kv.Value}")));
        var policy = new QuantPolicy();
        Assert.Contains(policy.QuantizedConvs(graph), n => n.Name == "sub0a_conv");
        Assert.Contains(policy.QuantizedConvs(graph), n => n.Name == "output_conv");
        Assert.Contains("dec0_s2d", policy.FloatNodes(graph));
        Assert.DoesNotContain("dec0_s2d", new QuantPolicy { QuantizeSkips = true }.FloatNodes(graph));
        var ints = GraphTests.SwapperInputs(2, 32, seed: 3);
        Dictionary<string, Tensor> expected;
        using (no_grad()) expected = model.call(ints);
        var actual = ExportParityTests.RunOrt(bytes, ints);
        double int8Psnr = ExportParityTests.Psnr(expected["output"].data<float>().ToArray(), actual["output"]);
        Assert.True(int8Psnr >= 25, $"INT8 vs float {int8Psnr:0.0} dB");

        // The importer (plain CNNs) reads both ops back and computes the same function.
        var builder = new GraphBuilder("moves", 32);
        var down = builder.SpaceToDepth("down", builder.ImageInput("image", 3));
        builder.Output("out", builder.DepthToSpace("up", builder.Conv("mix", down, 16, bias: true)));
        var moves = builder.Build();
        torch.manual_seed(2);
        using var small = new GraphModule(moves);
        var path = Path.Combine(TestAssets.TempDir(), "moves.onnx");
        File.WriteAllBytes(path, OnnxExporter.Export(small).ToByteArray());
        var imported = FaceFusion.Compress.Models.Import.OnnxImporter.Import(path);
        using var importedModel = imported.BuildModule();
        Assert.Equal([Ops.SpaceToDepth, Ops.Conv, Ops.DepthToSpace], importedModel.Graph.Nodes.Select(n => n.Op));
        var image = randn(2, 3, 32, 32);
        Tensor fromImport, fromModel;
        using (no_grad())
        {
            fromModel = small.call(new Dictionary<string, Tensor> { ["image"] = image })["out"];
            fromImport = importedModel.call(new Dictionary<string, Tensor> { [imported.Graph.Inputs[0].Name] = image }).Values.Single();
        }
        Assert.True(fromModel.allclose(fromImport, rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public void Pruning_AroundTheMoves_PrunedEqualsMasked_AndTheMovedChannelsStayWhole()
    {
        var graph = SubPixelTeacher(32);
        var analysis = new ChannelAnalysis(graph);
        ChannelGroup Of(string producer) => analysis.Groups.Single(g => g.Producers.Contains(producer));
        // The moved channels (the target's blocks, the heads' sub-pixels) are never pruned.
        Assert.False(Of("dec0_s2d").Prunable);
        Assert.False(Of("output_conv").Prunable);
        Assert.Contains("depth_to_space", Of("output_conv").Reason);
        // The half-resolution convs are ordinary groups: pruning one equals masking it, also for dec1b, which the
        // ending reads through the concat beside the target's moved channels.
        PruningTests.AssertPrunedEqualsMasked(graph, "sub0a_conv");
        PruningTests.AssertPrunedEqualsMasked(graph, "dec1b_conv");
    }

    [Fact]
    public void WarmStart_CopiesWhatMatches_SeedsTheRest_AndRefusesAnUnrelatedModel()
    {
        var dir = TestAssets.TempDir();
        var trained = Path.Combine(dir, "teacher");
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Teacher(32))) Checkpoint.Save(trained, model);
        var graph = SubPixelTeacher(32);
        var first = Checkpoint.WarmStartFrom(graph, trained, seed: 3);
        using var warm = first.Model;
        using var source = Checkpoint.Load(trained);
        var from = source.state_dict();
        var state = warm.state_dict();
        Assert.Equal(state.Keys.Order(), first.Copied.Concat(first.Fresh).Order());
        Assert.All(first.Copied, k => Assert.True(state[k].eq(from[k]).all().item<bool>(), k));
        Assert.Equal(new[] { "mask_conv", "output_conv", "sub0a_bn", "sub0a_conv", "sub0b_bn", "sub0b_conv" },
            first.Fresh.Select(k => k.Split('.')[0]).Distinct().Order());
        Assert.Contains("dec0a_conv.weight", first.Unused);
        // Fresh parameters come from the seed: the same seed gives the same model, another seed another one.
        var again = Checkpoint.WarmStartFrom(graph, trained, seed: 3);
        var other = Checkpoint.WarmStartFrom(graph, trained, seed: 4);
        using (again.Model)
        using (other.Model)
        {
            Assert.True(again.Model.state_dict()["sub0a_conv.weight"].eq(state["sub0a_conv.weight"]).all().item<bool>());
            Assert.False(other.Model.state_dict()["sub0a_conv.weight"].eq(state["sub0a_conv.weight"]).all().item<bool>());
        }

        // ICNR: the heads read by depth_to_space start with each channel's 2×2 sub-pixels equal (without it they differ),
        // so the fresh ending starts as a nearest-neighbour upsampling; copied parameters are untouched.
        var icnr = Checkpoint.WarmStartFrom(graph, trained, seed: 3, icnr: true);
        using (icnr.Model)
        {
            var icnrState = icnr.Model.state_dict();
            foreach (var head in new[] { "output_conv", "mask_conv" })
            {
                var blocks = icnrState[$"{head}.weight"].reshape(-1, 4, graph.Node("sub0b_conv").Channels * 9);
                Assert.True(blocks.sub(blocks.narrow(1, 0, 1)).abs().max().item<float>() == 0, head);
                var plainBlocks = state[$"{head}.weight"].reshape(-1, 4, graph.Node("sub0b_conv").Channels * 9);
                Assert.True(plainBlocks.sub(plainBlocks.narrow(1, 0, 1)).abs().max().item<float>() > 0, head);
            }
            Assert.True(icnrState["sub0a_conv.weight"].eq(state["sub0a_conv.weight"]).all().item<bool>()); // not read by a move
            Assert.All(icnr.Copied, k => Assert.True(icnrState[k].eq(from[k]).all().item<bool>(), k));
            using var scope = NewDisposeScope();
            var inputs = GraphTests.SwapperInputs(1, 32, seed: 4);
            Tensor mask;
            using (no_grad()) mask = icnr.Model.call(inputs)["mask"];
            var pooled = nn.functional.max_pool2d(mask, 2, 2).sub(nn.functional.avg_pool2d(mask, 2, 2));
            Assert.True(pooled.abs().max().item<float>() < 1e-6f); // every 2×2 block of the mask is one value
        }

        // The CLI writes a checkpoint that reloads alone; a model with nothing in common is refused, nothing written.
        var graphFile = Path.Combine(dir, "subpixel.json");
        File.WriteAllText(graphFile, graph.ToJson());
        var output = Path.Combine(dir, "warm");
        var (code, text) = Cli.CliTests.Ffc("warm-start", graphFile, "--from", trained, "-o", output, "--seed", "3");
        Assert.True(code == 0, text);
        Assert.Contains("fresh (seed 3)", text);
        using (var reloaded = Checkpoint.Load(output))
            Assert.True(reloaded.state_dict()["sub0a_conv.weight"].eq(state["sub0a_conv.weight"]).all().item<bool>());
        var unrelated = Path.Combine(dir, "unrelated.json");
        var unrelatedGraph = new GraphBuilder("unrelated", 32);
        unrelatedGraph.Output("out", unrelatedGraph.Conv("only_conv", unrelatedGraph.ImageInput("image", 3), 8));
        File.WriteAllText(unrelated, unrelatedGraph.Build().ToJson());
        (code, text) = Cli.CliTests.Ffc("warm-start", unrelated, "--from", trained, "-o", Path.Combine(dir, "bad"));
        Assert.Equal(1, code);
        Assert.Contains("no parameter matches", text);
        Assert.Contains(trained, text);
        Assert.False(Directory.Exists(Path.Combine(dir, "bad")));
        (code, text) = Cli.CliTests.Ffc("warm-start", Path.Combine(dir, "missing.json"), "--from", trained, "-o", Path.Combine(dir, "bad"));
        Assert.Equal(1, code);
        Assert.Contains("missing.json: no such graph file", text);
    }

    [Fact]
    public void Recipe_StudentGraph_IsPlannedWithItsMacs_AndAMissingFileIsAnErrorAtItsLine()
    {
        var dir = TestAssets.TempDir();
        var trained = Path.Combine(dir, "teacher");
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Teacher(32))) Checkpoint.Save(trained, model);
        File.WriteAllText(Path.Combine(dir, "subpixel.json"), SubPixelTeacher(32).ToJson());
        var recipePath = Path.Combine(dir, "subpixel.yaml");
        File.WriteAllText(recipePath, $"""
            name: subpixel
            data: {TinyDataset.Path}
            resolution: 32
            teacher: {trained}
            stages:
              - stage: distill
                student_graph: subpixel.json
                steps: 2
            """);
        var recipe = RecipeParser.Load(recipePath, rootDir: dir);
        var plan = new RecipeRunner(recipe, TestAssets.Assets, dir).Plan();
        var macs = ModelSummary.Human(ModelSummary.Of(SubPixelTeacher(32), 32).Macs);
        Assert.Contains(plan, line => line.StartsWith("01-distill") && line.Contains($"MACs {macs}"));

        File.WriteAllText(recipePath, File.ReadAllText(recipePath).Replace("subpixel.json", "nowhere.json"));
        var error = Assert.Single(Assert.Throws<RecipeException>(() => RecipeParser.Load(recipePath, rootDir: dir)).Errors);
        Assert.Equal(7, error.Line);
        Assert.Contains("'student_graph': 'nowhere.json' not found", error.Message);
    }
}
