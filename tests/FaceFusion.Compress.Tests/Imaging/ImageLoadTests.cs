using FaceFusion.Compress.Imaging;
using SkiaSharp;

namespace FaceFusion.Compress.Tests.Imaging;

public class ImageLoadTests
{
    private readonly string _dir = TestAssets.TempDir();

    [Fact]
    public void MissingFile_NamesTheFile()
    {
        var path = Path.Combine(_dir, "nope.jpg");
        var e = Assert.Throws<ImageLoadException>(() => RgbImage.Load(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains("not found", e.Message);
        Assert.StartsWith(path, e.Message);
    }

    [Fact]
    public void ZeroByteFile_IsRefused()
    {
        var path = Path.Combine(_dir, "empty.png");
        File.WriteAllBytes(path, []);
        var e = Assert.Throws<ImageLoadException>(() => RgbImage.Load(path));
        Assert.Contains("empty file", e.Message);
    }

    [Fact]
    public void NonImageFile_IsRefused()
    {
        var path = Path.Combine(_dir, "notes.jpg");
        File.WriteAllText(path, "this is not an image, whatever its name says");
        var e = Assert.Throws<ImageLoadException>(() => RgbImage.Load(path));
        Assert.Contains("not a decodable image", e.Message);
    }

    [Fact]
    public void TruncatedJpeg_IsRefused()
    {
        var bytes = File.ReadAllBytes(TestAssets.Still("audrey.jpg"));
        var path = Path.Combine(_dir, "truncated.jpg");
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<ImageLoadException>(() => RgbImage.Load(path));
        Assert.Contains("truncated", e.Message);
        Assert.Equal(path, e.FilePath);
    }

    [Fact]
    public void GreyscalePng_LoadsAsRgb()
    {
        var info = new SKImageInfo(5, 4, SKColorType.Gray8, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        bitmap.Erase(new SKColor(90, 90, 90));
        using var data = SKImage.FromBitmap(bitmap).Encode(SKEncodedImageFormat.Png, 100);
        var path = Path.Combine(_dir, "grey.png");
        File.WriteAllBytes(path, data.ToArray());
        var image = RgbImage.Load(path);
        Assert.Equal((5, 4), (image.Width, image.Height));
        Assert.All(image.Pixels, v => Assert.Equal(90, v));
    }

    [Fact]
    public void Png_RoundTripsExactly()
    {
        var image = new RgbImage(7, 3);
        new Random(1).NextBytes(image.Pixels);
        var path = Path.Combine(_dir, "rt.png");
        image.SavePng(path);
        Assert.Equal(image.Pixels, RgbImage.Load(path).Pixels);
        Assert.False(File.Exists(path + ".partial"));
    }
}
