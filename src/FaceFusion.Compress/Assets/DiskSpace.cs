namespace FaceFusion.Compress.Assets;

/// <summary>Raised before writing when the target file system lacks the space: nothing is written.</summary>
public sealed class DiskSpaceException(string message) : IOException(message);

/// <summary>
/// Checks free space before large writes (checkpoints, ONNX files, datasets, videos), so a full disk gives a clear
/// message instead of a truncated file. A reserve (default 100 MB, environment variable FFC_DISK_RESERVE_MB) is kept free.
/// </summary>
public static class DiskSpace
{
    public static long ReserveBytes =>
        long.TryParse(Environment.GetEnvironmentVariable("FFC_DISK_RESERVE_MB"), out var mb) && mb >= 0 ? mb * 1024 * 1024 : 100L * 1024 * 1024;

    /// <summary>Throws <see cref="DiskSpaceException"/> naming <paramref name="path"/> when fewer than <paramref name="bytes"/> + the reserve are free there.</summary>
    public static void Require(string path, long bytes, string what)
    {
        var full = Path.GetFullPath(path);
        var existing = full;
        while (!Directory.Exists(existing) && Path.GetDirectoryName(existing) is { } parent) existing = parent;
        long free;
        try { free = new DriveInfo(existing).AvailableFreeSpace; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException) { return; } // unknown: do not block
        if (free < bytes + ReserveBytes)
            throw new DiskSpaceException($"{full}: not enough disk space for {what} (needs {Mb(bytes)} MB plus a {Mb(ReserveBytes)} MB reserve, {Mb(free)} MB free); free some space or choose another folder");
    }

    private static string Mb(long bytes) => (bytes / 1048576.0).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture);
}
