using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Runtime;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace FaceFusion.Compress.Distillation;

/// <summary>What a teacher produced for a batch. Tensors belong to the caller's dispose scope.</summary>
public sealed record TeacherOutputs(Tensor Output, Tensor? Mask, IReadOnlyDictionary<string, Tensor> Features);

/// <summary>A frozen teacher swapper: a TorchSharp checkpoint or any ONNX swapper run through ONNX Runtime.</summary>
public interface ITeacher : IDisposable
{
    string Description { get; }
    int Resolution { get; }
    /// <summary>Runs the teacher without gradients; <paramref name="features"/> names intermediate tensors to return.</summary>
    TeacherOutputs Run(Tensor target, Tensor source, IReadOnlyCollection<string> features);
}

/// <summary>A TorchSharp checkpoint teacher (eval mode, no gradients). Owns its module.</summary>
public sealed class CheckpointTeacher : ITeacher
{
    private readonly GraphModule _model;

    public CheckpointTeacher(string dir)
    {
        _model = Checkpoint.Load(dir);
        _model.eval();
        foreach (var p in _model.parameters()) p.requires_grad = false;
        Description = $"checkpoint {dir} ({_model.Graph.Name})";
    }

    public string Description { get; }
    public int Resolution => _model.Graph.Resolution;
    public NetworkGraph Graph => _model.Graph;

    /// <summary>The teacher's (frozen) parameters, owned by the teacher.</summary>
    internal IEnumerable<TorchSharp.Modules.Parameter> Parameters() => _model.parameters();

    public TeacherOutputs Run(Tensor target, Tensor source, IReadOnlyCollection<string> features)
    {
        using (no_grad())
        {
            var outputs = _model.Run(new Dictionary<string, Tensor> { [SwapperIO.Target] = target, [SwapperIO.Source] = source }, features);
            return new TeacherOutputs(outputs[SwapperIO.Output], outputs.GetValueOrDefault(SwapperIO.Mask),
                features.ToDictionary(f => f, f => outputs[f]));
        }
    }

    public void Dispose() => _model.Dispose();
}

/// <summary>
/// An ONNX swapper teacher (e.g. an existing FaceFusion model with `target`/`source` inputs) run through ONNX
/// Runtime. Intermediate tensors the user names are added as graph outputs for the session, so feature
/// distillation works without the teacher's source code. Owns its session.
/// </summary>
public sealed class OnnxTeacher : ITeacher
{
    private readonly InferenceSession _session;
    private readonly HashSet<string> _exposed;

    private readonly bool _zeroOne;
    private readonly int _fixedBatch;

    /// <param name="path">The .onnx file.</param>
    /// <param name="features">Intermediate tensors to expose as outputs (feature distillation).</param>
    /// <param name="settings">ONNX Runtime session settings.</param>
    /// <param name="zeroOnePixels">The model takes and returns RGB in [0,1] (converted from and to this toolkit's [−1,1]).</param>
    public OnnxTeacher(string path, IReadOnlyCollection<string>? features = null, OrtSettings? settings = null, bool zeroOnePixels = false)
    {
        _zeroOne = zeroOnePixels;
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: teacher model not found", path);
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        var produced = model.Graph.Node.SelectMany(n => n.Output).ToHashSet();
        _exposed = features?.ToHashSet() ?? [];
        foreach (var f in _exposed)
        {
            if (!produced.Contains(f)) throw new InvalidDataException($"{path}: the teacher has no tensor named '{f}' to distil from");
            if (model.Graph.Output.All(o => o.Name != f)) model.Graph.Output.Add(new ValueInfoProto { Name = f });
        }
        OrtSessions.EnsureEnvironment();
        using var options = OrtSessions.CreateOptions(settings);
        _session = new InferenceSession(model.ToByteArray(), options);
        if (!_session.InputMetadata.ContainsKey(SwapperIO.Target) || !_session.InputMetadata.ContainsKey(SwapperIO.Source))
            throw new InvalidDataException($"{path}: not a face swapper (needs inputs 'target' and 'source')");
        var dims = _session.InputMetadata[SwapperIO.Target].Dimensions;
        Resolution = dims[3];
        // Exported with a fixed batch (e.g. 1, as many FaceFusion models are): batches are run in chunks of it.
        _fixedBatch = dims[0] > 0 ? dims[0] : 0;
        Description = $"ONNX {path}";
    }

    public string Description { get; }
    public int Resolution { get; }

    public TeacherOutputs Run(Tensor target, Tensor source, IReadOnlyCollection<string> features)
    {
        int n = (int)target.shape[0], r = (int)target.shape[3];
        if (r != Resolution) throw new InvalidOperationException($"the ONNX teacher runs at {Resolution} px, the batch is {r} px");
        if (_fixedBatch > 0 && n != _fixedBatch)
        {
            // Chunks of the fixed batch; the last one padded by repeating the last sample, the padding dropped after.
            int padded = (n + _fixedBatch - 1) / _fixedBatch * _fixedBatch;
            if (padded != n)
            {
                target = cat([target, target.narrow(0, n - 1, 1).expand(padded - n, -1, -1, -1)], 0);
                source = cat([source, source.narrow(0, n - 1, 1).expand(padded - n, -1)], 0);
            }
            var parts = Enumerable.Range(0, padded / _fixedBatch)
                .Select(i => Run(target.narrow(0, i * _fixedBatch, _fixedBatch), source.narrow(0, i * _fixedBatch, _fixedBatch), features)).ToList();
            Tensor Join(IEnumerable<Tensor> chunks) => cat(chunks.ToList(), 0).narrow(0, 0, n);
            return new TeacherOutputs(Join(parts.Select(p => p.Output)), parts[0].Mask is null ? null : Join(parts.Select(p => p.Mask!)),
                features.ToDictionary(f => f, f => Join(parts.Select(p => p.Features[f]))));
        }
        if (_zeroOne) target = target.add(1).div(2);
        var inputs = new[]
        {
            NamedOnnxValue.CreateFromTensor(SwapperIO.Target, new DenseTensor<float>(target.contiguous().data<float>().ToArray(), [n, 3, r, r])),
            NamedOnnxValue.CreateFromTensor(SwapperIO.Source, new DenseTensor<float>(source.contiguous().data<float>().ToArray(), [n, 512])),
        };
        var wanted = new List<string> { SwapperIO.Output };
        if (_session.OutputMetadata.ContainsKey(SwapperIO.Mask)) wanted.Add(SwapperIO.Mask);
        wanted.AddRange(features);
        using var results = _session.Run(inputs, wanted);
        Tensor ToTorch(DisposableNamedOnnxValue v)
        {
            var t = v.AsTensor<float>();
            return tensor(t.ToArray(), t.Dimensions.ToArray().Select(d => (long)d).ToArray());
        }
        var byName = results.ToDictionary(r => r.Name);
        var output = ToTorch(byName[SwapperIO.Output]);
        if (_zeroOne) output = output.mul(2).sub(1);
        return new TeacherOutputs(output, byName.TryGetValue(SwapperIO.Mask, out var m) ? ToTorch(m) : null,
            features.ToDictionary(f => f, f => ToTorch(byName[f])));
    }

    public void Dispose() => _session.Dispose();
}

public static class Teachers
{
    /// <summary>A checkpoint folder or an .onnx file.</summary>
    /// <param name="path">The teacher.</param>
    /// <param name="onnxFeatures">Intermediate tensors of an ONNX teacher to expose.</param>
    /// <param name="zeroOnePixels">An ONNX teacher takes and returns [0,1] RGB (config `teacher_pixel_range: zero_one`).</param>
    public static ITeacher Open(string path, IReadOnlyCollection<string>? onnxFeatures = null, bool zeroOnePixels = false) =>
        path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) ? new OnnxTeacher(path, onnxFeatures, zeroOnePixels: zeroOnePixels)
        : Directory.Exists(path) ? new CheckpointTeacher(path)
        : throw new FileNotFoundException($"{path}: teacher must be a checkpoint folder or an .onnx file");
}
