using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace FaceFusion.Compress.Runtime;

/// <summary>
/// A face-swapper ONNX model in ONNX Runtime with FaceFusion's IO: `target` [N,3,R,R] and `source` [N,512] →
/// `output` [N,3,R,R] (and `mask` [N,1,R,R] when the model has one). Owns its session: dispose it.
/// </summary>
public sealed class OrtSwapper : IDisposable
{
    public const string Target = "target", Source = "source", Output = "output", Mask = "mask";
    private readonly InferenceSession _session;

    public string Path { get; }
    public int Resolution { get; }
    public bool HasMask { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public OrtSwapper(string path, OrtSettings? settings = null) : this(path, OrtSessions.Open(path, settings)) { }

    /// <summary>A swapper from an in-memory model; <paramref name="name"/> names it in errors.</summary>
    public OrtSwapper(byte[] model, string name, OrtSettings? settings = null) : this(name, CreateSession(model, name, settings)) { }

    private static InferenceSession CreateSession(byte[] model, string name, OrtSettings? settings)
    {
        using var options = OrtSessions.CreateOptions(settings);
        try { return new InferenceSession(model, options); }
        catch (OnnxRuntimeException e) { throw new InvalidDataException($"{name}: ONNX Runtime cannot load this model ({e.Message.Trim()})", e); }
    }

    private OrtSwapper(string path, InferenceSession session)
    {
        Path = path;
        _session = session;
        if (!_session.InputMetadata.ContainsKey(Target) || !_session.InputMetadata.ContainsKey(Source) || !_session.OutputMetadata.ContainsKey(Output))
        {
            _session.Dispose();
            throw new InvalidDataException($"{path}: not a face swapper (needs inputs 'target' and 'source' and output 'output'; has {string.Join(", ", _session.InputMetadata.Keys)} → {string.Join(", ", _session.OutputMetadata.Keys)})");
        }
        var dims = _session.InputMetadata[Target].Dimensions;
        Resolution = dims.Length == 4 && dims[3] > 0 ? dims[3] : throw new InvalidDataException($"{path}: 'target' must be [N,3,R,R] with a static R");
        HasMask = _session.OutputMetadata.ContainsKey(Mask);
        Metadata = _session.ModelMetadata.CustomMetadataMap;
    }

    /// <summary>Runs a batch: target values [N·3·R·R], source values [N·512]; returns output (and mask) values.</summary>
    public (float[] Output, float[]? Mask) Run(float[] target, float[] source, int batch)
    {
        int r = Resolution;
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor(Target, new DenseTensor<float>(target, [batch, 3, r, r])),
            NamedOnnxValue.CreateFromTensor(Source, new DenseTensor<float>(source, [batch, 512])),
        };
        using var results = _session.Run(inputs);
        var output = results.First(v => v.Name == Output).AsTensor<float>().ToArray();
        var mask = HasMask ? results.First(v => v.Name == Mask).AsTensor<float>().ToArray() : null;
        return (output, mask);
    }

    public void Dispose() => _session.Dispose();
}
