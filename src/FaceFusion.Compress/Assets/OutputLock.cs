namespace FaceFusion.Compress.Assets;

/// <summary>Another process holds the lock of an output; with no waiting asked for, the command stops.</summary>
public sealed class OutputInUseException(string message) : IOException(message);

/// <summary>
/// An advisory lock on one output (a folder or a file): a lock file opened with <see cref="FileShare.None"/>, which
/// .NET takes as <c>flock(LOCK_EX)</c> on Unix, so the OS releases it when the process dies, even by kill -9. The
/// holder's process id sits in a sidecar file (the lock file itself cannot be read while held). The lock files stay
/// after release: unlinking one would let a waiter lock a file no later process opens.
/// Dispose releases the lock; the instance owns its file handle.
/// </summary>
public sealed class OutputLock : IDisposable
{
    private readonly FileStream _handle;

    /// <summary>What is locked, as the user named it (used in messages).</summary>
    public string Target { get; }

    private OutputLock(FileStream handle, string target)
    {
        _handle = handle;
        Target = target;
    }

    /// <summary>Locks the folder <paramref name="dir"/> (created if absent) through <c>DIR/.ffc-lock</c>.</summary>
    public static OutputLock ForFolder(string dir, bool wait = true, Action<string>? log = null)
    {
        var full = Path.GetFullPath(dir);
        Directory.CreateDirectory(full);
        return Acquire(Path.Combine(full, ".ffc-lock"), dir, wait, log);
    }

    /// <summary>
    /// Locks <paramref name="path"/> (a file, or a folder that gets replaced as a whole) through
    /// <c>.NAME.ffc-lock</c> beside it, so the lock survives the replacement.
    /// </summary>
    public static OutputLock ForPath(string path, bool wait = true, Action<string>? log = null)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        return Acquire(Path.Combine(parent, $".{Path.GetFileName(full)}.ffc-lock"), path, wait, log);
    }

    private static OutputLock Acquire(string lockFile, string target, bool wait, Action<string>? log)
    {
        AtomicFile.RequireRegularOrAbsent(lockFile);
        bool told = false;
        while (true)
        {
            try
            {
                var handle = new FileStream(lockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                try { AtomicFile.WriteAllText(lockFile + ".pid", $"{Environment.ProcessId}\n"); }
                catch (IOException) { /* the pid is only for messages */ }
                return new OutputLock(handle, target);
            }
            catch (IOException e) when (e is not UnsafeOutputException && !(e is FileNotFoundException or DirectoryNotFoundException))
            {
                var holder = Holder(lockFile);
                if (!wait) throw new OutputInUseException($"{target} is in use by process {holder}");
                if (!told) log?.Invoke($"{target} is in use by process {holder}; waiting for it to finish (--no-wait stops instead)");
                told = true;
                Thread.Sleep(250);
            }
        }
    }

    private static string Holder(string lockFile)
    {
        try { return File.ReadAllText(lockFile + ".pid").Trim() is { Length: > 0 } pid ? pid : "?"; }
        catch (IOException) { return "?"; }
        catch (UnauthorizedAccessException) { return "?"; }
    }

    /// <summary>Releases the lock.</summary>
    public void Dispose() => _handle.Dispose();
}
