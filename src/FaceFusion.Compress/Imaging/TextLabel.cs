using SkiaSharp;

namespace FaceFusion.Compress.Imaging;

/// <summary>Renders caption strips (white text on black) with SkiaSharp, for side-by-side comparison sheets.</summary>
public static class TextLabel
{
    /// <summary>A <paramref name="width"/>-wide strip with one line per entry of <paramref name="lines"/>.</summary>
    public static RgbImage Strip(int width, IReadOnlyList<string> lines, float size = 16)
    {
        int lineHeight = (int)Math.Ceiling(size * 1.35);
        int height = lineHeight * lines.Count + 8;
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.Black);
            using var typeface = SKTypeface.FromFamilyName("DejaVu Sans") ?? SKTypeface.Default;
            using var font = new SKFont(typeface, size);
            using var paint = new SKPaint { Color = SKColors.White, IsAntialias = true };
            for (int i = 0; i < lines.Count; i++) canvas.DrawText(lines[i], 6, 4 + lineHeight * (i + 1) - lineHeight * 0.3f, font, paint);
        }
        var image = new RgbImage(width, height);
        var rgba = bitmap.Bytes;
        for (int i = 0; i < width * height; i++)
            for (int c = 0; c < 3; c++) image.Pixels[i * 3 + c] = rgba[i * 4 + c];
        return image;
    }

    /// <summary>Stacks images vertically (left-aligned, black padding to the widest).</summary>
    public static RgbImage StackVertical(params RgbImage[] images)
    {
        int width = images.Max(i => i.Width), height = images.Sum(i => i.Height);
        var result = new RgbImage(width, height);
        int y = 0;
        foreach (var image in images)
        {
            for (int row = 0; row < image.Height; row++)
                Array.Copy(image.Pixels, row * image.Width * 3, result.Pixels, ((y + row) * width) * 3, image.Width * 3);
            y += image.Height;
        }
        return result;
    }

    /// <summary>Places images side by side (top-aligned, black padding to the tallest).</summary>
    public static RgbImage SideBySide(params RgbImage[] images)
    {
        int width = images.Sum(i => i.Width), height = images.Max(i => i.Height);
        var result = new RgbImage(width, height);
        int x = 0;
        foreach (var image in images)
        {
            for (int row = 0; row < image.Height; row++)
                Array.Copy(image.Pixels, row * image.Width * 3, result.Pixels, (row * width + x) * 3, image.Width * 3);
            x += image.Width;
        }
        return result;
    }
}
