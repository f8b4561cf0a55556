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

    /// <summary>One header entry checked: a known dtype, non-negative dimensions and a byte range of exactly their size inside the data section.</summary>
    private static (ScalarType Type, long[] Shape, long Start, long End) Entry(string path, JsonProperty entry)
    {
        var e = entry.Value;
        if (e.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: tensor '{entry.Name}' is not a header object");
        var dtypeName = e.TryGetProperty("dtype", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        var type = Types.FirstOrDefault(t => t.Value.Name == dtypeName);
        if (type.Value.Name is null) throw new InvalidDataException($"{path}: tensor '{entry.Name}' has unsupported dtype {dtypeName ?? "(none)"}");
        if (!e.TryGetProperty("shape", out var s) || s.ValueKind != JsonValueKind.Array || !e.TryGetProperty("data_offsets", out var o) || o.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{path}: tensor '{entry.Name}' needs 'shape' and 'data_offsets' arrays");
        var shape = s.EnumerateArray().Select(v => v.TryGetInt64(out var n) && n >= 0 ? n : throw new InvalidDataException($"{path}: tensor '{entry.Name}' has an invalid dimension {v}")).ToArray();
        var range = o.EnumerateArray().Select(v => v.TryGetInt64(out var n) ? n : throw new InvalidDataException($"{path}: tensor '{entry.Name}' has an invalid offset {v}")).ToArray();
        long bytes;
        try { bytes = checked(shape.Aggregate(1L, (a, b) => a * b) * type.Value.Size); }
        catch (OverflowException) { throw new InvalidDataException($"{path}: tensor '{entry.Name}' has shape [{string.Join(",", shape)}], too large"); }
        if (range.Length != 2 || range[0] < 0 || range[1] < range[0] || range[1] - range[0] != bytes)
            throw new InvalidDataException($"{path}: tensor '{entry.Name}' has an invalid byte range [{string.Join(",", range)}] for {bytes} bytes of {type.Value.Name} [{string.Join(",", shape)}]");
        return (type.Key, shape, range[0], range[1]);
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
        long dataLength = data.Length - dataStart;
        var ranges = new List<(long Start, long End, string Name)>();
        try
        {
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: the safetensors header is not a JSON object");
                foreach (var entry in doc.RootElement.EnumerateObject())
                {
                    if (entry.Name == "__metadata__")
                    {
                        foreach (var m in entry.Value.EnumerateObject())
                            metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString() ?? ""
                                : throw new InvalidDataException($"{path}: metadata '{m.Name}' is not a string");
                        continue;
                    }
                    var (type, shape, start, end) = Entry(path, entry);
                    ranges.Add((start, end, entry.Name));
                    if (end > dataLength) throw new InvalidDataException($"{path}: tensor '{entry.Name}' ends at byte {end} of a {dataLength}-byte data section (file truncated?)");
                    var tensor = empty(shape, type);
                    data.AsSpan((int)(dataStart + start), (int)(end - start)).CopyTo(tensor.bytes);
                    result[entry.Name] = tensor;
                }
            }
            // Two tensors sharing bytes are one tensor read twice: a writer error or a crafted file, never weights.
            var sorted = ranges.OrderBy(r => r.Start).ToList();
            for (int i = 1; i < sorted.Count; i++)
                if (sorted[i].Start < sorted[i - 1].End)
                    throw new InvalidDataException($"{path}: tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap in the data section");
        }
        catch (Exception e) when (e is not InvalidDataException)
        {
            foreach (var t in result.Values) t.Dispose();
            throw new InvalidDataException($"{path}: malformed safetensors header ({e.Message})", e);
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }
}
