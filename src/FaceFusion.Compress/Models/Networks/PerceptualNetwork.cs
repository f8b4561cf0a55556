using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Import;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Models.Networks;

/// <summary>
/// A frozen ImageNet feature network for perceptual losses and distances: <see cref="forward"/> takes RGB in
/// [−1,1] at the crop's own size (no upsampling to 224) and returns the outputs of its four stages.
/// </summary>
public sealed class PerceptualNetwork : nn.Module<Tensor, Tensor[]>
{
    private readonly GraphModule features;
    private readonly string[] _stageOutputs;
    private readonly float[] _mean;
    private readonly float[] _std;
    private readonly bool _bgr255;

    /// <summary>Which network this is ("resnet18", "vgg16", "vgg19"), for logs: the loss says which it used.</summary>
    public string Kind { get; }

    private PerceptualNetwork(string kind, GraphModule network, string[] stageOutputs, float[] mean, float[] std, bool bgr255) : base("perceptual")
    {
        Kind = kind;
        features = network;
        _stageOutputs = stageOutputs;
        _mean = mean;
        _std = std;
        _bgr255 = bgr255;
        RegisterComponents();
        features.eval();
        foreach (var p in parameters()) p.requires_grad = false;
    }

    /// <summary>
    /// The bundled ImageNet ResNet18 (ML.NET's CNTK export): input BGR 0–255 minus the per-channel means of its
    /// preprocessing model's mean image. Its four stage outputs are, at each spatial size, the last ReLU that follows
    /// a residual add (found from the graph, not hard-coded: this export has three blocks in its last stage).
    /// </summary>
    public static PerceptualNetwork ResNet18(string resnetOnnx, string preprocessOnnx)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(resnetOnnx));
        var addOutputs = model.Graph.Node.Where(n => n.OpType == "Add").Select(n => n.Output[0]).ToHashSet();
        var residualRelus = model.Graph.Node.Where(n => n.OpType == "Relu" && addOutputs.Contains(n.Input[0])).Select(n => n.Output[0]).ToList();
        var probe = OnnxImporter.Import(resnetOnnx, "resnet18", residualRelus);
        foreach (var w in probe.Weights.Values) w.Dispose();
        var shapes = ShapeInference.Infer(probe.Graph, probe.Graph.Resolution);
        var stages = residualRelus.GroupBy(r => shapes[probe.TensorToNode[r]].Height).Select(g => g.Last()).ToList();
        if (stages.Count != 4) throw new InvalidDataException($"{resnetOnnx}: expected 4 ResNet stages, found {stages.Count}");
        var imported = OnnxImporter.Import(resnetOnnx, "resnet18", stages);
        var module = imported.BuildModule();
        foreach (var w in imported.Weights.Values) w.Dispose();
        return new PerceptualNetwork("resnet18", module, imported.Graph.Outputs.Select(o => o.Name).ToArray(),
            ChannelMeans(preprocessOnnx), [1f, 1f, 1f], bgr255: true);
    }

    /// <summary>Per-channel means of the mean image that ResNetPreprocess.onnx subtracts (in its BGR order).</summary>
    public static float[] ChannelMeans(string preprocessOnnx)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(preprocessOnnx));
        var sub = model.Graph.Node.FirstOrDefault(n => n.OpType == "Sub")
                  ?? throw new InvalidDataException($"{preprocessOnnx}: no Sub node (not ML.NET's ResNet preprocessing model)");
        var mean = model.Graph.Initializer.FirstOrDefault(t => sub.Input.Contains(t.Name))
                   ?? throw new InvalidDataException($"{preprocessOnnx}: the mean image is not an initializer");
        using var t = OnnxImporter.ToTorch(mean);
        // The mean image is [1,3,H,W] (or [3,H,W]); its per-channel averages are what survives at other sizes.
        using var perChannel = t.reshape(3, -1).mean([1]);
        return perChannel.data<float>().ToArray();
    }

    /// <summary>
    /// VGG16 or VGG19 (torchvision layout) with weights from a safetensors file the user supplies, keys as in
    /// torchvision's state dict ("features.0.weight", …). Stage outputs: relu1_2, relu2_2, relu3_3/3_4, relu4_3/4_4.
    /// </summary>
    public static PerceptualNetwork Vgg(string kind, string weightsPath)
    {
        int[][] blocks = kind switch
        {
            "vgg16" => [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512]],
            "vgg19" => [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512]],
            _ => throw new ArgumentException($"unknown VGG '{kind}' (vgg16, vgg19)"),
        };
        var g = new GraphBuilder(kind, 224);
        var x = g.ImageInput("image", 3);
        int torchvisionIndex = 0;
        var rename = new Dictionary<string, string>();
        var stages = new List<string>();
        for (int b = 0; b < blocks.Length; b++)
        {
            if (b > 0) { x = g.Pool($"pool{b}", x, Ops.MaxPool, 2, 2); torchvisionIndex++; }
            for (int c = 0; c < blocks[b].Length; c++)
            {
                var conv = g.Conv($"conv{b + 1}_{c + 1}", x, blocks[b][c], 3, bias: true);
                rename[$"features.{torchvisionIndex}.weight"] = $"{conv}.weight";
                rename[$"features.{torchvisionIndex}.bias"] = $"{conv}.bias";
                x = g.Act($"relu{b + 1}_{c + 1}", conv, Activations.Relu);
                torchvisionIndex += 2;
            }
            stages.Add(x);
            g.Output(x, x);
        }
        var module = new GraphModule(g.Build());
        var tensors = SafeTensors.Load(weightsPath, out _);
        try
        {
            var state = module.state_dict();
            using (no_grad())
                foreach (var (from, to) in rename)
                {
                    if (!tensors.TryGetValue(from, out var w)) throw new InvalidDataException($"{weightsPath}: missing '{from}' (expected torchvision {kind} keys)");
                    if (!w.shape.SequenceEqual(state[to].shape)) throw new InvalidDataException($"{weightsPath}: '{from}' has shape [{string.Join(",", w.shape)}], {kind} needs [{string.Join(",", state[to].shape)}]");
                    state[to].copy_(w);
                }
        }
        catch { module.Dispose(); throw; }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
        // torchvision's ImageNet normalisation on [0,1] RGB.
        return new PerceptualNetwork(kind, module, stages.ToArray(), [0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f], bgr255: false);
    }

    /// <summary>Stage features of RGB images in [−1,1]. Every returned tensor is the caller's.</summary>
    public override Tensor[] forward(Tensor rgb)
    {
        using var scope = NewDisposeScope();
        Tensor x;
        if (_bgr255)
        {
            var bgr = rgb.flip(1).add(1).mul(127.5);
            x = bgr.sub(tensor(_mean, [1, 3, 1, 1], dtype: rgb.dtype, device: rgb.device));
        }
        else
        {
            var unit = rgb.add(1).mul(0.5);
            x = unit.sub(tensor(_mean, [1, 3, 1, 1], dtype: rgb.dtype, device: rgb.device))
                .div(tensor(_std, [1, 3, 1, 1], dtype: rgb.dtype, device: rgb.device));
        }
        return FeaturesOfPreprocessed(x).Select(t => t.MoveToOuterDisposeScope()).ToArray();
    }

    /// <summary>Stage features of input already in the network's own normalisation. Returned tensors are the caller's.</summary>
    public Tensor[] FeaturesOfPreprocessed(Tensor x)
    {
        using var scope = NewDisposeScope();
        var outputs = features.call(new Dictionary<string, Tensor> { [features.Graph.Inputs[0].Name] = x });
        return _stageOutputs.Select(s => outputs[s].MoveToOuterDisposeScope()).ToArray();
    }

    /// <summary>
    /// An LPIPS-like distance without LPIPS's learned weights: per stage, features normalised to unit length over
    /// channels at each position, squared difference averaged over positions and channels; mean over stages.
    /// Returns [N]. Differentiable in both arguments. <paramref name="weight"/> ([N,1,H,W] at the images' size, e.g.
    /// 1 + k·eyes-and-mouth) scales each stage's distance map after area-resizing to that stage's size; the caller
    /// keeps ownership of it.
    /// </summary>
    public Tensor Distance(Tensor a, Tensor b, Tensor? weight = null)
    {
        using var scope = NewDisposeScope();
        var fa = forward(a);
        var fb = forward(b);
        Tensor? total = null;
        for (int i = 0; i < fa.Length; i++)
        {
            var map = nn.functional.normalize(fa[i], dim: 1).sub(nn.functional.normalize(fb[i], dim: 1)).pow(2).sum(1);
            if (weight is not null) map = map.mul(nn.functional.adaptive_avg_pool2d(weight, [map.shape[1], map.shape[2]]).squeeze(1));
            var d = map.mean([1, 2]);
            total = total is null ? d : total.add(d);
        }
        return total!.div(fa.Length).MoveToOuterDisposeScope();
    }
}
