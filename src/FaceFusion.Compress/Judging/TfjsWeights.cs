using System.Text.Json;

namespace FaceFusion.Compress.Judging;

/// <summary>One weight tensor read from a TF.js weights manifest: its shape (TF layout) and its float values.</summary>
public sealed record TfjsWeight(string Name, int[] Shape, float[] Values)
{
    /// <summary>Number of elements the shape describes.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);
}

/// <summary>
/// Reads TensorFlow.js's weights-manifest format: a JSON list of groups (bare, as face-api ships it, or under a
/// <c>weightsManifest</c> key, as in a <c>model.json</c>), each naming its binary shards (<c>paths</c>, relative to the
/// manifest) and the tensors stored in them one after another (<c>weights</c>: name, shape, dtype, optional
/// <c>quantization</c>). Quantized tensors are dequantized the way TF.js does it: <c>uint8</c>/<c>uint16</c> as
/// <c>q·scale + min</c>, <c>float16</c> as half floats. Only float32 tensors are supported (that is all a conv net
/// needs); anything else is an error naming the manifest and the tensor.
/// </summary>
public static class TfjsWeights
{
    /// <summary>Reads every tensor of the manifest and its shards, in manifest order.</summary>
    /// <exception cref="InvalidDataException">The manifest is malformed, a shard is missing or of the wrong size, or a
    /// dtype is unsupported; the message names the file.</exception>
    public static IReadOnlyList<TfjsWeight> Read(string manifestPath)
    {
        if (!File.Exists(manifestPath)) throw new FileNotFoundException($"{manifestPath}: weights manifest not found", manifestPath);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(manifestPath)); }
        catch (JsonException e) { throw new InvalidDataException($"{manifestPath}: not valid JSON ({e.Message})", e); }
        using (doc)
        {
            var groups = doc.RootElement.ValueKind switch
            {
                JsonValueKind.Array => doc.RootElement,
                JsonValueKind.Object when doc.RootElement.TryGetProperty("weightsManifest", out var m) && m.ValueKind == JsonValueKind.Array => m,
                _ => throw new InvalidDataException($"{manifestPath}: expected a list of weight groups or an object with `weightsManifest`"),
            };
            string dir = Path.GetDirectoryName(Path.GetFullPath(manifestPath))!;
            var result = new List<TfjsWeight>();
            int groupIndex = 0;
            foreach (var group in groups.EnumerateArray())
            {
                result.AddRange(ReadGroup(manifestPath, dir, group, groupIndex++));
            }
            var duplicate = result.GroupBy(w => w.Name).FirstOrDefault(g => g.Count() > 1);
            if (duplicate is not null) throw new InvalidDataException($"{manifestPath}: tensor `{duplicate.Key}` is listed twice");
            return result;
        }
    }

    private static List<TfjsWeight> ReadGroup(string manifestPath, string dir, JsonElement group, int groupIndex)
    {
        if (!group.TryGetProperty("paths", out var paths) || paths.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{manifestPath}: weight group {groupIndex} has no `paths` list");
        if (!group.TryGetProperty("weights", out var weights) || weights.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{manifestPath}: weight group {groupIndex} has no `weights` list");
        // A group's shards are one byte stream cut into files; the tensors run across them in order.
        var bytes = new MemoryStream();
        foreach (var p in paths.EnumerateArray())
        {
            string shard = Path.Combine(dir, p.GetString() ?? "");
            if (!File.Exists(shard)) throw new FileNotFoundException($"{shard}: weight shard named by {manifestPath} not found", shard);
            using var f = File.OpenRead(shard);
            f.CopyTo(bytes);
        }
        var data = bytes.GetBuffer().AsSpan(0, (int)bytes.Length);
        var result = new List<TfjsWeight>();
        long offset = 0;
        foreach (var w in weights.EnumerateArray())
        {
            string name = w.TryGetProperty("name", out var n) ? n.GetString() ?? "" : "";
            if (name.Length == 0) throw new InvalidDataException($"{manifestPath}: a tensor of group {groupIndex} has no name");
            if (!w.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{manifestPath}: tensor `{name}` has no shape");
            int[] shape = shapeEl.EnumerateArray().Select(d => d.GetInt32()).ToArray();
            if (shape.Any(d => d < 0)) throw new InvalidDataException($"{manifestPath}: tensor `{name}` has a negative dimension");
            string dtype = w.TryGetProperty("dtype", out var dt) ? dt.GetString() ?? "" : "";
            if (dtype != "float32")
                throw new InvalidDataException($"{manifestPath}: tensor `{name}` has dtype `{dtype}`; only float32 tensors are supported");
            long count = shape.Aggregate(1L, (a, d) => a * d);
            var values = new float[count];
            long size;
            if (w.TryGetProperty("quantization", out var q) && q.ValueKind == JsonValueKind.Object)
            {
                string qType = q.TryGetProperty("dtype", out var qt) ? qt.GetString() ?? "" : "";
                int elementBytes = qType switch
                {
                    "uint8" => 1,
                    "uint16" or "float16" => 2,
                    _ => throw new InvalidDataException($"{manifestPath}: tensor `{name}` has unsupported quantization dtype `{qType}`"),
                };
                size = count * elementBytes;
                var src = Slice(data, offset, size, manifestPath, name);
                if (qType == "float16")
                {
                    for (long i = 0; i < count; i++)
                        values[i] = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(src.Slice((int)(i * 2), 2)));
                }
                else
                {
                    if (!q.TryGetProperty("scale", out var scaleEl) || !q.TryGetProperty("min", out var minEl))
                        throw new InvalidDataException($"{manifestPath}: tensor `{name}` is {qType}-quantized without `scale` and `min`");
                    double scale = scaleEl.GetDouble(), min = minEl.GetDouble();
                    // TF.js computes q·scale + min in double precision and stores the result as float32.
                    for (long i = 0; i < count; i++)
                    {
                        int qv = elementBytes == 1 ? src[(int)i] : BitConverter.ToUInt16(src.Slice((int)(i * 2), 2));
                        values[i] = (float)(qv * scale + min);
                    }
                }
            }
            else
            {
                size = count * 4;
                var src = Slice(data, offset, size, manifestPath, name);
                for (long i = 0; i < count; i++) values[i] = BitConverter.ToSingle(src.Slice((int)(i * 4), 4));
            }
            offset += size;
            result.Add(new TfjsWeight(name, shape, values));
        }
        if (offset != data.Length)
            throw new InvalidDataException($"{manifestPath}: weight group {groupIndex}'s shards hold {data.Length} bytes but its tensors need {offset}");
        return result;
    }

    private static ReadOnlySpan<byte> Slice(ReadOnlySpan<byte> data, long offset, long size, string manifestPath, string name)
    {
        if (offset + size > data.Length)
            throw new InvalidDataException($"{manifestPath}: tensor `{name}` needs bytes {offset}..{offset + size} but the shards hold only {data.Length} (truncated weights?)");
        return data.Slice((int)offset, (int)size);
    }
}
