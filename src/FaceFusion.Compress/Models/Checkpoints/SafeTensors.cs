using FaceFusion.Compress.Assets;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Models.Checkpoints;

/// <summary>
/// The safetensors format (8-byte little-endian header length, a JSON header of name → dtype/shape/byte range,
/// then raw little-endian data): readable from Python with `safetensors.torch.load_file`, memory-mappable, and with
/// no code execution on load, unlike pickle-based checkpoints.
/// </summary>
public static class SafeTensors
{
    private static readonly Dictionary<ScalarType, (string Name, int Size)> Types = new()
    {
        [ScalarType.Float32] = ("F32", 4), [ScalarType.Float16] = ("F16", 2), [ScalarType.Int64] = ("I64", 8),
        [ScalarType.Int32] = ("I32", 4), [ScalarType.Int8] = ("I8", 1), [ScalarType.Byte] = ("U8", 1), [ScalarType.Float64] = ("F64", 8),
    };

    /// <summary>Writes tensors (CPU copies are taken) through a temporary file and a rename.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        FaceFusion.Compress.Assets.DiskSpace.Require(path, tensors.Values.Sum(t => t.NumberOfElements * t.ElementSize) + 65536, "the weights");
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        var blobs = new List<byte[]>();
        long offset = 0;
        foreach (var (name, tensor) in tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!Types.TryGetValue(tensor.dtype, out var type))
                throw new NotSupportedException($"tensor '{name}' has dtype {tensor.dtype}, which safetensors export does not support here");
            using var cpu = tensor.detach().cpu().contiguous();
            var bytes = new byte[cpu.numel() * type.Size];
            cpu.bytes.CopyTo(bytes);
            header[name] = new Dictionary<string, object> { ["dtype"] = type.Name, ["shape"] = cpu.shape, ["data_offsets"] = new[] { offset, offset + bytes.Length } };
            blobs.Add(bytes);
            offset += bytes.Length;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (json.Length + 7) / 8 * 8; // align the data section to 8 bytes, padding the header with spaces
        var headerBytes = new byte[padded];
        Array.Fill(headerBytes, (byte)' ');
        json.CopyTo(headerBytes, 0);
        AtomicFile.Write(path, file =>
        {
            var length = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
            file.Write(length);
            file.Write(headerBytes);
            foreach (var blob in blobs) file.Write(blob);
        });
    }

    /// <summary>Reads every tensor (CPU). The caller disposes them. Errors name the file and the cause.</summary>
    public static Dictionary<string, Tensor> Load(string path, out Dictionary<string, string> metadata)
    {
        metadata = new Dictionary<string, string>();
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: weights file not found", path);
        var data = File.ReadAllBytes(path);
        if (data.Length < 8) throw new InvalidDataException($"{path}: too short to be a safetensors file");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(data);
        if (headerLength > (ulong)(data.Length - 8)) throw new InvalidDataException($"{path}: truncated or not a safetensors file (header length {headerLength})");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(data.AsMemory(8, (int)headerLength)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: corrupt safetensors header ({e.Message})", e); }
        var result = new Dictionary<string, Tensor>();
        long dataStart = 8 + (long)headerLength;
        using (doc)
        {
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__")
                {
                    foreach (var m in entry.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString() ?? "";
                    continue;
                }
                var dtypeName = entry.Value.GetProperty("dtype").GetString();
                var type = Types.FirstOrDefault(t => t.Value.Name == dtypeName);
                if (type.Value.Name is null) throw new InvalidDataException($"{path}: tensor '{entry.Name}' has unsupported dtype {dtypeName}");
                var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(v => v.GetInt64()).ToArray();
                var range = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(v => v.GetInt64()).ToArray();
                long count = shape.Aggregate(1L, (a, b) => a * b);
                if (range.Length != 2 || range[1] - range[0] != count * type.Value.Size || dataStart + range[1] > data.Length)
                    throw new InvalidDataException($"{path}: tensor '{entry.Name}' has an invalid byte range (file truncated?)");
                var tensor = empty(shape, type.Key);
                data.AsSpan((int)(dataStart + range[0]), (int)(range[1] - range[0])).CopyTo(tensor.bytes);
                result[entry.Name] = tensor;
            }
        }
        return result;
    }
}
