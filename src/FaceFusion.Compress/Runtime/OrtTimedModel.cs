using System.Globalization;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace FaceFusion.Compress.Runtime;

/// <summary>
/// Any ONNX model ready to be run again and again on fixed inputs: a recogniser, a detector, a swapper. Inputs are
/// given (an `.npy` float32 array or a raw little-endian float32 `.f32` file per input) or made up: uniform in [−1, 1]
/// for float inputs, with a swapper's 512-d `source` unit-normalised, zeros for integer inputs. Symbolic dimensions
/// take <see cref="OrtTimedModel.Shapes"/> or 1 (batch). Disposes its session and inputs.
/// </summary>
public sealed class OrtTimedModel : IDisposable
{
    private readonly InferenceSession _session;
    private readonly List<NamedOnnxValue> _inputs = [];

    public string Path { get; }
    /// <summary>Each input's name and the dimensions it runs with.</summary>
    public IReadOnlyList<(string Name, int[] Dims)> InputShapes { get; }

    /// <param name="path">The ONNX file.</param>
    /// <param name="settings">ONNX Runtime session settings.</param>
    /// <param name="shapes">Dimensions per input name for inputs with symbolic or unknown dimensions (else batch 1).
    /// Names the model has no input of are ignored, so several models can share one set (the caller checks that each
    /// name belongs to some model).</param>
    /// <param name="files">An input file per input name (`.npy` float32 or raw `.f32`); its element count must match.
    /// Names are treated as for <paramref name="shapes"/>.</param>
    /// <param name="seed">Seed of the made-up inputs.</param>
    public OrtTimedModel(string path, OrtSettings? settings = null, IReadOnlyDictionary<string, int[]>? shapes = null,
        IReadOnlyDictionary<string, string>? files = null, int seed = 1)
    {
        Path = path;
        _session = OrtSessions.Open(path, settings);
        try
        {
            var rng = new Random(seed);
            var used = new List<(string, int[])>();
            foreach (var (name, meta) in _session.InputMetadata)
            {
                var dims = shapes?.GetValueOrDefault(name) ?? meta.Dimensions.Select((d, i) => d > 0 ? d : i == 0 ? 1
                    : throw new InvalidDataException($"{path}: input '{name}' has a symbolic dimension {i} ([{string.Join(",", meta.Dimensions)}]); give it with --shape {name}=D0xD1x…")).ToArray();
                if (shapes?.ContainsKey(name) == true && dims.Length != meta.Dimensions.Length)
                    throw new InvalidDataException($"{path}: input '{name}' has {meta.Dimensions.Length} dimensions; --shape gave {dims.Length}");
                long count = dims.Aggregate(1L, (a, d) => a * d);
                if (count is <= 0 or > 1L << 28) throw new InvalidDataException($"{path}: input '{name}' of shape [{string.Join(",", dims)}] is empty or too large");
                used.Add((name, dims));
                var type = meta.ElementDataType;
                if (files?.GetValueOrDefault(name) is { } file)
                {
                    if (type != TensorElementType.Float) throw new InvalidDataException($"{file}: input '{name}' of {path} is {type}; only float32 inputs can be read from a file");
                    var values = ReadFloats(file);
                    if (values.Length != count) throw new InvalidDataException($"{file}: holds {values.Length} floats; input '{name}' [{string.Join(",", dims)}] needs {count}");
                    _inputs.Add(NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(values, dims)));
                    continue;
                }
                _inputs.Add(type switch
                {
                    TensorElementType.Float => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(MadeUp(name, dims, (int)count, rng), dims)),
                    TensorElementType.Float16 => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<Float16>(MadeUp(name, dims, (int)count, rng).Select(v => (Float16)v).ToArray(), dims)),
                    TensorElementType.Int64 => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<long>(new long[count], dims)),
                    TensorElementType.Int32 => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<int>(new int[count], dims)),
                    TensorElementType.UInt8 => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<byte>(new byte[count], dims)),
                    _ => throw new InvalidDataException($"{path}: input '{name}' has element type {type}, which the timer cannot make up"),
                });
            }
            InputShapes = used;
        }
        catch
        {
            _session.Dispose();
            throw;
        }
    }

    /// <summary>One run on the fixed inputs; its outputs are disposed at once.</summary>
    public void Run()
    {
        using var results = _session.Run(_inputs);
    }

    private static float[] MadeUp(string name, int[] dims, int count, Random rng)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(rng.NextDouble() * 2 - 1);
        // A swapper's identity input is a unit embedding per row.
        if (name == OrtSwapper.Source && dims.Length == 2)
            for (int row = 0; row < dims[0]; row++)
            {
                var slice = values.AsSpan(row * dims[1], dims[1]);
                double norm = Math.Sqrt(slice.ToArray().Sum(v => (double)v * v));
                for (int k = 0; k < slice.Length; k++) slice[k] = (float)(slice[k] / Math.Max(norm, 1e-12));
            }
        return values;
    }

    /// <summary>Reads an `.npy` (version 1–3, little-endian float32, C order) or a raw little-endian float32 file.</summary>
    public static float[] ReadFloats(string file)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"{file}: input file not found", file);
        var bytes = File.ReadAllBytes(file);
        int offset = 0;
        if (bytes.Length >= 10 && bytes[0] == 0x93 && Encoding.ASCII.GetString(bytes, 1, 5) == "NUMPY")
        {
            int major = bytes[6];
            int headerLength = major == 1 ? BitConverter.ToUInt16(bytes, 8) : BitConverter.ToInt32(bytes, 8);
            int start = major == 1 ? 10 : 12;
            var header = Encoding.ASCII.GetString(bytes, start, Math.Min(headerLength, bytes.Length - start));
            if (!header.Contains("'descr': '<f4'") && !header.Contains("'descr': '|f4'"))
                throw new InvalidDataException($"{file}: only float32 little-endian .npy arrays are read (header {header.Trim()})");
            if (header.Contains("'fortran_order': True")) throw new InvalidDataException($"{file}: Fortran-order .npy arrays are not read; save it in C order");
            offset = start + headerLength;
        }
        if ((bytes.Length - offset) % 4 != 0) throw new InvalidDataException($"{file}: {bytes.Length - offset} data bytes is not a whole number of float32 values");
        var values = new float[(bytes.Length - offset) / 4];
        Buffer.BlockCopy(bytes, offset, values, 0, values.Length * 4);
        return values;
    }

    /// <summary>Parses `NAME=D0xD1x…` into a name and dimensions; errors name the option.</summary>
    public static (string Name, int[] Dims) ParseShape(string text)
    {
        var parts = text.Split('=', 2);
        if (parts.Length != 2 || parts[0].Length == 0) throw new ArgumentException($"--shape '{text}': use NAME=D0xD1x… (e.g. input=1x3x112x112)");
        try
        {
            var dims = parts[1].Split('x').Select(d => int.Parse(d, NumberStyles.None, CultureInfo.InvariantCulture)).ToArray();
            if (dims.Any(d => d < 1)) throw new FormatException();
            return (parts[0], dims);
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new ArgumentException($"--shape '{text}': dimensions must be positive integers joined by x (e.g. input=1x3x112x112)");
        }
    }

    public void Dispose()
    {
        foreach (var input in _inputs) (input.Value as IDisposable)?.Dispose();
        _session.Dispose();
    }
}
