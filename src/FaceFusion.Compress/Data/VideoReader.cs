using System.Diagnostics;
using System.Globalization;
using FaceFusion.Compress.Imaging;

namespace FaceFusion.Compress.Data;

/// <summary>Raised when ffmpeg/ffprobe cannot read a video; the message names the file and ffmpeg's reason.</summary>
public sealed class VideoReadException(string path, string cause) : Exception($"{path}: {cause}");

/// <summary>Decodes video frames to RGB through the ffmpeg command line (Debian package, installed by `make setup`).</summary>
public static class VideoReader
{
    public static readonly string[] Extensions = [".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"];

    public static bool IsVideo(string path) => Extensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    /// <summary>Width, height, frame rate and (when the container says) frame count of the first video stream.</summary>
    public static (int Width, int Height, double Fps, int FrameCount) Probe(string path)
    {
        if (!File.Exists(path)) throw new VideoReadException(path, "file not found");
        var (code, stdout, stderr) = Run("ffprobe", ["-v", "error", "-select_streams", "v:0",
            "-show_entries", "stream=width,height,r_frame_rate,nb_frames", "-of", "default=noprint_wrappers=1", path]);
        if (code != 0 || string.IsNullOrWhiteSpace(stdout))
            throw new VideoReadException(path, $"ffprobe cannot read it ({FirstLine(stderr) ?? "no video stream"})");
        var fields = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0].Trim(), p => p[1].Trim());
        if (!fields.TryGetValue("width", out var w) || !int.TryParse(w, out int width) ||
            !fields.TryGetValue("height", out var h) || !int.TryParse(h, out int height))
            throw new VideoReadException(path, "no video stream");
        double fps = 25;
        if (fields.TryGetValue("r_frame_rate", out var r) && r.Split('/') is [var num, var den] &&
            double.TryParse(num, CultureInfo.InvariantCulture, out var n) && double.TryParse(den, CultureInfo.InvariantCulture, out var d) && d > 0)
            fps = n / d;
        int frames = fields.TryGetValue("nb_frames", out var nf) && int.TryParse(nf, out var f) ? f : -1;
        return (width, height, fps, frames);
    }

    /// <summary>Streams every frame as (index, image). The ffmpeg process is ended when enumeration stops.</summary>
    public static IEnumerable<(int Index, RgbImage Frame)> ReadFrames(string path)
    {
        var (width, height, _, _) = Probe(path);
        var psi = new ProcessStartInfo("ffmpeg")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "-v", "error", "-nostdin", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1" })
            psi.ArgumentList.Add(a);
        using var process = Process.Start(psi) ?? throw new VideoReadException(path, "cannot start ffmpeg");
        var stderrTask = process.StandardError.ReadToEndAsync();
        var stream = process.StandardOutput.BaseStream;
        int frameBytes = width * height * 3;
        int index = 0;
        try
        {
            while (true)
            {
                var buffer = new byte[frameBytes];
                int read = 0;
                while (read < frameBytes)
                {
                    int got = stream.Read(buffer, read, frameBytes - read);
                    if (got == 0) break;
                    read += got;
                }
                if (read == 0) break;
                if (read < frameBytes) break; // a trailing partial frame from a truncated file is not a frame
                yield return (index++, new RgbImage(width, height, buffer));
            }
            process.WaitForExit();
            if (process.ExitCode != 0 && index == 0)
                throw new VideoReadException(path, $"ffmpeg cannot decode it ({FirstLine(stderrTask.Result) ?? $"exit code {process.ExitCode}"})");
        }
        finally
        {
            if (!process.HasExited) { try { process.Kill(); } catch (InvalidOperationException) { } }
        }
    }

    private static string? FirstLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()).FirstOrDefault();

    private static (int Code, string Stdout, string Stderr) Run(string exe, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            var output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, output, err.Result);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new InvalidOperationException($"'{exe}' is not installed; run `make setup` (it installs ffmpeg)");
        }
    }
}
