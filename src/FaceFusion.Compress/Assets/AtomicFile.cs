using System.Security.Cryptography;
using System.Text;

namespace FaceFusion.Compress.Assets;

/// <summary>
/// Raised before anything is written when an output path is unsafe to write (a symlink or a folder at the final name,
/// a folder the toolkit did not make, a path outside its run). The message starts with the offending path.
/// </summary>
public sealed class UnsafeOutputException(string message) : IOException(message);

/// <summary>
/// The toolkit's one rule for writing an output file: the bytes go to a temporary file with a unique name in the
/// target folder, created exclusively (so a link planted at a guessable name is never followed), and the rename is
/// the only step that touches the final name. A final name that is a symlink or a folder is refused, not replaced.
/// Appends go only to regular files.
/// </summary>
public static class AtomicFile
{
    /// <summary>Suffix of every temporary file: a leftover one is the toolkit's own and safe to delete.</summary>
    public const string PartialSuffix = ".partial";

    /// <summary>
    /// Writes <paramref name="path"/> through <paramref name="write"/>, which gets the temporary file's stream (owned
    /// and disposed here; it must not keep it). Nothing is left at the temporary name when <paramref name="write"/> throws.
    /// </summary>
    /// <exception cref="UnsafeOutputException">The final name is a symlink or a folder.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        RequireRegularOrAbsent(full);
        var (tmp, stream) = CreateTempStream(full);
        try
        {
            using (stream)
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            Commit(tmp, full);
        }
        catch
        {
            Discard(tmp);
            throw;
        }
    }

    /// <summary>
    /// Creates an empty temporary file for <paramref name="path"/> for a writer that needs a file name (an external
    /// encoder), and returns its name; the caller then calls <see cref="Commit"/> or <see cref="Discard"/>.
    /// </summary>
    public static string CreateTemp(string path)
    {
        var full = Path.GetFullPath(path);
        RequireRegularOrAbsent(full);
        var (tmp, stream) = CreateTempStream(full);
        stream.Dispose();
        return tmp;
    }

    /// <summary>Renames the finished temporary file <paramref name="tmp"/> onto <paramref name="path"/>: the only step that touches the final name.</summary>
    public static void Commit(string tmp, string path)
    {
        var full = Path.GetFullPath(path);
        // Checked again just before the rename: rename(2) replaces a link planted meanwhile rather than following it,
        // but a link or folder there means someone else uses that name.
        RequireRegularOrAbsent(full);
        var info = new FileInfo(tmp);
        if (info.LinkTarget is not null || !info.Exists) throw new UnsafeOutputException($"{tmp}: the temporary file was replaced or removed while writing {full}");
        File.Move(tmp, full, overwrite: true);
    }

    /// <summary>Deletes a temporary file from <see cref="CreateTemp"/> (a failed write); never throws.</summary>
    public static void Discard(string tmp)
    {
        try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static (string Path, FileStream Stream) CreateTempStream(string full)
    {
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}{PartialSuffix}");
        // CreateNew is O_CREAT|O_EXCL: it fails on any existing entry, a dangling symlink included, and never follows one.
        return (tmp, new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16));
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically (see <see cref="Write"/>).</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));

    /// <summary>Writes UTF-8 text (no BOM) to <paramref name="path"/> atomically.</summary>
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, new UTF8Encoding(false).GetBytes(text));

    /// <summary>Writes lines, each ended by the platform's newline as <see cref="File.WriteAllLines(string, IEnumerable{string})"/> does, atomically.</summary>
    public static void WriteAllLines(string path, IEnumerable<string> lines) => Write(path, s =>
    {
        using var writer = new StreamWriter(s, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
        foreach (var line in lines) writer.WriteLine(line);
    });

    /// <summary>
    /// Opens <paramref name="path"/> for appending (created when absent). The caller disposes the stream.
    /// </summary>
    /// <exception cref="UnsafeOutputException">The path is a symlink, a folder or another non-regular file.</exception>
    public static FileStream OpenAppend(string path)
    {
        var full = Path.GetFullPath(path);
        RequireRegularOrAbsent(full);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var stream = new FileStream(full, FileMode.Append, FileAccess.Write, FileShare.Read);
        // Checked once more on the open path: a link swapped in between the check and the open is caught here.
        try { RequireRegularOrAbsent(full); }
        catch { stream.Dispose(); throw; }
        return stream;
    }

    /// <summary>Opens a text writer appending UTF-8 to <paramref name="path"/> (see <see cref="OpenAppend"/>); the caller disposes it.</summary>
    public static StreamWriter AppendText(string path) => new(OpenAppend(path), new UTF8Encoding(false));

    /// <summary>Appends <paramref name="text"/> to a regular file (see <see cref="OpenAppend"/>).</summary>
    public static void AppendAllText(string path, string text)
    {
        using var writer = AppendText(path);
        writer.Write(text);
    }

    /// <summary>Throws unless <paramref name="path"/> is absent or a regular file (not a symlink, not a folder).</summary>
    public static void RequireRegularOrAbsent(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null) throw new UnsafeOutputException($"{path}: is a symbolic link; refusing to write through it");
        if (Directory.Exists(path)) throw new UnsafeOutputException($"{path}: is a folder, not a file");
        if (info.Exists && (info.Attributes & (FileAttributes.Device | FileAttributes.ReparsePoint)) != 0)
            throw new UnsafeOutputException($"{path}: is not a regular file; refusing to write it");
    }

    /// <summary>
    /// Deletes the toolkit's own leftover temporary files of <paramref name="path"/> (from a killed process) so they
    /// do not accumulate; entries that are not regular files are left alone.
    /// </summary>
    public static void CleanLeftovers(string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) return;
        foreach (var leftover in Directory.EnumerateFiles(dir, $".{Path.GetFileName(full)}.*{PartialSuffix}"))
        {
            var info = new FileInfo(leftover);
            if (info.LinkTarget is not null) continue;
            if (ProcessIdOf(info.Name, Path.GetFileName(full)) is { } pid && pid != Environment.ProcessId && IsAlive(pid)) continue;
            try { info.Delete(); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static int? ProcessIdOf(string tmpName, string finalName)
    {
        var rest = tmpName[(finalName.Length + 2)..];
        var dash = rest.IndexOf('-');
        return dash > 0 && int.TryParse(rest[..dash], out var pid) ? pid : null;
    }

    private static bool IsAlive(int pid)
    {
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }
}
