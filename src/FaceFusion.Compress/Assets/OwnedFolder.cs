using System.Text.Json;

namespace FaceFusion.Compress.Assets;

/// <summary>
/// Folders the toolkit made carry a marker file (<see cref="MarkerName"/>, a short JSON of what made them); only such
/// a folder is ever deleted or replaced. Anything else at an output path is the user's and is left untouched.
/// </summary>
public static class OwnedFolder
{
    /// <summary>The marker's file name inside an owned folder.</summary>
    public const string MarkerName = ".ffc-output";

    /// <summary>Creates <paramref name="dir"/> (and its parents) and marks it as made by <paramref name="madeBy"/> (e.g. "data prepare").</summary>
    /// <exception cref="UnsafeOutputException"><paramref name="dir"/> is a symlink or a file.</exception>
    public static void Create(string dir, string madeBy)
    {
        var full = Path.GetFullPath(dir);
        RequireNotLink(full);
        Directory.CreateDirectory(full);
        Mark(full, madeBy);
    }

    /// <summary>Writes the marker into an existing folder the caller has just made.</summary>
    public static void Mark(string dir, string madeBy) =>
        AtomicFile.WriteAllText(Path.Combine(dir, MarkerName), JsonSerializer.Serialize(new
        {
            tool = "ffc", made_by = madeBy, pid = Environment.ProcessId, created = DateTime.UtcNow.ToString("o"),
        }) + "\n");

    /// <summary>True when <paramref name="dir"/> is a real folder (not a link) holding the marker as a regular file.</summary>
    public static bool IsOwned(string dir)
    {
        var full = Path.GetFullPath(dir);
        if (!Directory.Exists(full) || new DirectoryInfo(full).LinkTarget is not null) return false;
        var marker = new FileInfo(Path.Combine(full, MarkerName));
        return marker.Exists && marker.LinkTarget is null;
    }

    /// <summary>
    /// Checks, before any work, that an output folder may be replaced: absent, one of the toolkit's own, or (with
    /// <paramref name="force"/>) empty. <paramref name="option"/> names the option in the message (e.g. "-o").
    /// </summary>
    /// <exception cref="UnsafeOutputException">It holds something else; the message starts with the folder.</exception>
    public static void RequireReplaceable(string dir, bool force, string option = "-o")
    {
        var full = Path.GetFullPath(dir);
        RequireNotLink(full);
        if (File.Exists(full)) throw new UnsafeOutputException($"{dir}: is a file, not an output folder; choose another {option}");
        if (!Directory.Exists(full) || IsOwned(full)) return;
        bool empty = !Directory.EnumerateFileSystemEntries(full).Any();
        if (force && empty) return;
        throw new UnsafeOutputException(force
            ? $"{dir}: exists, is not empty and was not made by ffc (no {MarkerName} marker); --force replaces only an empty folder or one of ffc's own; nothing was changed"
            : $"{dir}: exists and was not made by ffc (no {MarkerName} marker); choose another {option}, or --force for an empty folder; nothing was changed");
    }

    /// <summary>
    /// Deletes <paramref name="dir"/> recursively if it is one of the toolkit's own; does nothing when it is absent.
    /// With <paramref name="orEmpty"/> an unmarked empty folder (one --force accepted) is removed too.
    /// </summary>
    /// <exception cref="UnsafeOutputException">It exists without the marker, or is a link: nothing is deleted.</exception>
    public static void Delete(string dir, bool orEmpty = false)
    {
        var full = Path.GetFullPath(dir);
        RequireNotLink(full);
        if (!Directory.Exists(full)) return;
        if (orEmpty && !IsOwned(full) && !Directory.EnumerateFileSystemEntries(full).Any())
        {
            // Not recursive: fails rather than deleting anything that appeared since.
            Directory.Delete(full, recursive: false);
            return;
        }
        if (!IsOwned(full)) throw new UnsafeOutputException($"{dir}: not deleted: it was not made by ffc (no {MarkerName} marker)");
        Directory.Delete(full, recursive: true);
    }

    /// <summary>
    /// Deletes the folder <paramref name="name"/> inside <paramref name="parent"/>: <paramref name="name"/> must be one
    /// path segment (<see cref="PathSegment.Require"/>) and the folder a real one, not a link. For the toolkit's own
    /// fixed-name subfolders (stage folders, checkpoint steps) inside a folder it owns.
    /// </summary>
    public static void DeleteChild(string parent, string name)
    {
        PathSegment.Require(name, "folder name", parent);
        var full = Path.Combine(Path.GetFullPath(parent), name);
        RequireNotLink(full);
        if (Directory.Exists(full)) Directory.Delete(full, recursive: true);
    }

    private static void RequireNotLink(string full)
    {
        var info = new DirectoryInfo(Path.TrimEndingDirectorySeparator(full));
        if (info.LinkTarget is not null) throw new UnsafeOutputException($"{full}: is a symbolic link; refusing to write or delete through it");
    }
}

/// <summary>Names that become one folder or file name under a folder the toolkit owns (run names, stage names).</summary>
public static class PathSegment
{
    /// <summary>Why <paramref name="value"/> is not a single safe path segment, or null when it is.</summary>
    public static string? Problem(string? value)
    {
        if (string.IsNullOrEmpty(value)) return "is empty";
        if (value is "." or "..") return "is '.' or '..'";
        if (value.IndexOfAny(['/', '\\']) >= 0) return "contains a path separator";
        if (Path.IsPathRooted(value)) return "is an absolute path";
        if (value.Any(char.IsControl)) return "contains a control character";
        if (value.Trim() != value) return "starts or ends with white space";
        return null;
    }

    /// <summary>Throws naming <paramref name="where"/> (a file), <paramref name="what"/> and the value unless it is one path segment.</summary>
    /// <exception cref="UnsafeOutputException">It is not.</exception>
    public static string Require(string? value, string what, string where)
    {
        if (Problem(value) is { } problem)
            throw new UnsafeOutputException($"{where}: {what} '{Escape(value)}' {problem}; it must be a single folder name");
        return value!;
    }

    private static string Escape(string? value) => string.Concat((value ?? "").Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
}
