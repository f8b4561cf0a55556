namespace FaceFusion.Compress.Cli;

/// <summary>
/// The one line `ffc` prints for a failure: `error: CAUSE`. LibTorch's messages carry a native backtrace of a dozen
/// or more lines ("Exception raised from …", "frame #0: …"); only their first line is the cause, and the rest is shown
/// with FFC_DEBUG=1. A message of several lines of the toolkit's own is joined on one line. Exceptions wrapping others
/// (a type initializer, an aggregate) report the innermost cause.
/// </summary>
internal static class ErrorLine
{
    public static string Of(Exception exception)
    {
        var e = exception;
        while (e is TypeInitializationException or System.Reflection.TargetInvocationException or AggregateException && e.InnerException is not null)
            e = e.InnerException;
        var lines = e.Message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0) return $"error: {e.GetType().Name}";
        string first = lines[0];
        bool native = lines.Skip(1).Any(l => l.StartsWith("Exception raised from", StringComparison.Ordinal) || l.StartsWith("frame #", StringComparison.Ordinal));
        // A message of several lines of our own (one per problem) stays whole, on one line.
        return native ? $"error: {first} (set FFC_DEBUG=1 for LibTorch's trace)" : $"error: {string.Join("; ", lines)}";
    }
}
