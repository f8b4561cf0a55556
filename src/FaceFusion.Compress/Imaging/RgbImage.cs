using SkiaSharp;

namespace FaceFusion.Compress.Imaging;

/// <summary>Raised when a file cannot be read as an image. The message names the file and the cause.</summary>
public sealed class ImageLoadException(string path, string cause, Exception? inner = null)
    : Exception($"{path}: {cause}", inner)
{
    /// <summary>The file that failed to load.</summary>
    public string FilePath { get; } = path;
    /// <summary>Why it failed, without the path.</summary>
    public string Cause { get; } = cause;
}

/// <summary>
/// An 8-bit RGB image in row-major HWC order. Plain managed memory: nothing to dispose.
/// Images of any colour type SkiaSharp decodes (grey, CMYK JPEG, 16-bit PNG, alpha) are converted to RGB on load.
/// </summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }
    /// <summary>Pixels, R,G,B per pixel, rows top to bottom; length Width·Height·3.</summary>
    public byte[] Pixels { get; }

    public RgbImage(int width, int height, byte[]? pixels = null)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"image size must be positive, got {width}x{height}");
        Width = width;
        Height = height;
        Pixels = pixels ?? new byte[width * height * 3];
        if (Pixels.Length != width * height * 3)
            throw new ArgumentException($"pixel buffer has {Pixels.Length} bytes, expected {width * height * 3}");
    }

    public byte this[int x, int y, int c]
    {
        get => Pixels[(y * Width + x) * 3 + c];
        set => Pixels[(y * Width + x) * 3 + c] = value;
    }

    /// <summary>Decodes an image file. Throws <see cref="ImageLoadException"/> naming the file and the cause.</summary>
    public static RgbImage Load(string path)
    {
        if (!File.Exists(path)) throw new ImageLoadException(path, "file not found");
        var info = new FileInfo(path);
        if (info.Length == 0) throw new ImageLoadException(path, "empty file (0 bytes)");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) { throw new ImageLoadException(path, $"cannot read file ({e.Message})", e); }
        return Decode(bytes, path);
    }

    /// <summary>Largest image accepted (width × height): bigger files are refused before decoding, not allocated.</summary>
    public const long MaxPixels = 64L * 1024 * 1024;

    /// <summary>Decodes encoded image bytes; <paramref name="nameForErrors"/> names the source in errors.</summary>
    public static RgbImage Decode(byte[] encoded, string nameForErrors)
    {
        using var stream = new MemoryStream(encoded, writable: false);
        using var codec = SKCodec.Create(stream, out var result);
        if (codec is null)
            throw new ImageLoadException(nameForErrors, $"not a decodable image ({result})");
        if ((long)codec.Info.Width * codec.Info.Height > MaxPixels)
            throw new ImageLoadException(nameForErrors, $"image too large ({codec.Info.Width}x{codec.Info.Height} pixels; the limit is {MaxPixels / (1024 * 1024)} megapixels)");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var status = codec.GetPixels(info, bitmap.GetPixels());
        // A truncated file decodes partially: refuse it rather than train on a half-grey image.
        if (status != SKCodecResult.Success)
            throw new ImageLoadException(nameForErrors, status == SKCodecResult.IncompleteInput
                ? "truncated image data (incomplete input)"
                : $"image data could not be decoded ({status})");
        return FromRgba(bitmap.Width, bitmap.Height, bitmap.GetPixelSpan());
    }

    private static RgbImage FromRgba(int width, int height, ReadOnlySpan<byte> rgba)
    {
        var image = new RgbImage(width, height);
        var dst = image.Pixels;
        for (int i = 0, j = 0; i < width * height; i++, j += 4)
        {
            // Composite transparent pixels over black so alpha never leaks into colour.
            int a = rgba[j + 3];
            dst[i * 3] = (byte)(rgba[j] * a / 255);
            dst[i * 3 + 1] = (byte)(rgba[j + 1] * a / 255);
            dst[i * 3 + 2] = (byte)(rgba[j + 2] * a / 255);
        }
        return image;
    }

    /// <summary>Encodes as PNG, written to a temporary file and renamed so no reader sees half a file.</summary>
    public void SavePng(string path, IReadOnlyDictionary<string, string>? textChunks = null)
    {
        var bytes = EncodePng();
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        FaceFusion.Compress.Assets.AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>PNG bytes of this image.</summary>
    public byte[] EncodePng()
    {
        var info = new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var span = bitmap.GetPixelSpan();
        unsafe
        {
            fixed (byte* p = span)
            {
                var dst = new Span<byte>(p, span.Length);
                for (int i = 0, j = 0; i < Width * Height; i++, j += 4)
                {
                    dst[j] = Pixels[i * 3];
                    dst[j + 1] = Pixels[i * 3 + 1];
                    dst[j + 2] = Pixels[i * 3 + 2];
                    dst[j + 3] = 255;
                }
            }
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var encoded = image.Encode(SKEncodedImageFormat.Png, 100);
        return encoded.ToArray();
    }

    /// <summary>Bilinear sample of channel <paramref name="c"/> at (x, y) in pixel-centre coordinates; outside is <paramref name="border"/>.</summary>
    public float Sample(float x, float y, int c, float border = 0f)
    {
        int x0 = (int)MathF.Floor(x), y0 = (int)MathF.Floor(y);
        float fx = x - x0, fy = y - y0;
        float v00 = Get(x0, y0, c, border), v10 = Get(x0 + 1, y0, c, border);
        float v01 = Get(x0, y0 + 1, c, border), v11 = Get(x0 + 1, y0 + 1, c, border);
        return (v00 * (1 - fx) + v10 * fx) * (1 - fy) + (v01 * (1 - fx) + v11 * fx) * fy;
    }

    private float Get(int x, int y, int c, float border) =>
        (uint)x < (uint)Width && (uint)y < (uint)Height ? Pixels[(y * Width + x) * 3 + c] : border;

    /// <summary>
    /// Warps with a 2×3 affine <paramref name="srcToDst"/> (dst = M·[x, y, 1]) into a new image of the given size:
    /// each destination pixel samples the source at the inverse-mapped position (bilinear, black outside).
    /// </summary>
    public RgbImage WarpAffine(Affine2D srcToDst, int width, int height)
    {
        var inv = srcToDst.Inverse();
        var result = new RgbImage(width, height);
        var dst = result.Pixels;
        Parallel.For(0, height, y =>
        {
            for (int x = 0; x < width; x++)
            {
                var (sx, sy) = inv.Apply(x, y);
                int o = (y * width + x) * 3;
                for (int c = 0; c < 3; c++)
                    dst[o + c] = (byte)Math.Clamp(MathF.Round(Sample((float)sx, (float)sy, c)), 0, 255);
            }
        });
        return result;
    }

    /// <summary>Resizes with area-aware bilinear sampling (pixel centres aligned, as OpenCV's INTER_LINEAR).</summary>
    public RgbImage Resize(int width, int height)
    {
        double sx = (double)Width / width, sy = (double)Height / height;
        return WarpAffine(new Affine2D(1 / sx, 0, 0.5 / sx - 0.5, 0, 1 / sy, 0.5 / sy - 0.5), width, height);
    }

    /// <summary>The sub-image in [x, x+w) × [y, y+h), clamped to the image.</summary>
    public RgbImage Crop(int x, int y, int w, int h)
    {
        x = Math.Clamp(x, 0, Width - 1); y = Math.Clamp(y, 0, Height - 1);
        w = Math.Clamp(w, 1, Width - x); h = Math.Clamp(h, 1, Height - y);
        var result = new RgbImage(w, h);
        for (int row = 0; row < h; row++)
            Array.Copy(Pixels, ((y + row) * Width + x) * 3, result.Pixels, row * w * 3, w * 3);
        return result;
    }
}
