using System.Buffers.Binary;
using System.Text;

namespace FaceFusion.Compress.Imaging;

/// <summary>Adds and reads PNG tEXt chunks (provenance metadata). Written here: SkiaSharp's encoder has no text chunks.</summary>
public static class PngText
{
    private static readonly uint[] Table = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    /// <summary>The CRC-32 PNG chunks carry (over chunk type and data).</summary>
    public static uint Crc(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (var b in data) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    /// <summary>Inserts tEXt chunks (Latin-1 keyword and text) right after IHDR.</summary>
    public static byte[] Add(byte[] png, IReadOnlyDictionary<string, string> texts)
    {
        const int ihdrEnd = 8 + 4 + 4 + 13 + 4;
        using var output = new MemoryStream();
        output.Write(png, 0, ihdrEnd);
        Span<byte> buffer = stackalloc byte[4];
        foreach (var (key, value) in texts)
        {
            var body = Encoding.Latin1.GetBytes(key).Concat(new byte[] { 0 }).Concat(Encoding.Latin1.GetBytes(value)).ToArray();
            var chunk = new byte[4 + body.Length];
            Encoding.ASCII.GetBytes("tEXt").CopyTo(chunk, 0);
            body.CopyTo(chunk, 4);
            BinaryPrimitives.WriteUInt32BigEndian(buffer, (uint)body.Length);
            output.Write(buffer);
            output.Write(chunk);
            BinaryPrimitives.WriteUInt32BigEndian(buffer, Crc(chunk));
            output.Write(buffer);
        }
        output.Write(png, ihdrEnd, png.Length - ihdrEnd);
        return output.ToArray();
    }

    /// <summary>The tEXt chunks of a PNG file.</summary>
    public static Dictionary<string, string> Read(byte[] png)
    {
        var result = new Dictionary<string, string>();
        int pos = 8;
        while (pos + 12 <= png.Length)
        {
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos));
            var type = Encoding.ASCII.GetString(png, pos + 4, 4);
            if (type == "tEXt")
            {
                var body = png.AsSpan(pos + 8, length);
                int zero = body.IndexOf((byte)0);
                if (zero > 0) result[Encoding.Latin1.GetString(body[..zero])] = Encoding.Latin1.GetString(body[(zero + 1)..]);
            }
            if (type == "IEND") break;
            pos += 12 + length;
        }
        return result;
    }
}
