using System.Globalization;

namespace FaceFusion.Compress.Reporting;

/// <summary>
/// An append-only CSV log with fixed columns (written with CsvHelper's writer), flushed after every row so a crash
/// loses at most the row being written. Reopening truncates rows past a resume point so a resumed run's log reads
/// like an uninterrupted one.
/// </summary>
public sealed class CsvLog : IDisposable
{
    private readonly StreamWriter _writer;
    private readonly CsvHelper.CsvWriter _csv;

    public IReadOnlyList<string> Columns { get; }

    /// <param name="path">The CSV file.</param>
    /// <param name="columns">Column names; an existing file must have the same header.</param>
    /// <param name="keepRow">When appending, keeps existing rows for which this returns true (by the first column).</param>
    public CsvLog(string path, IReadOnlyList<string> columns, Func<string, bool>? keepRow = null)
    {
        Columns = columns;
        var header = string.Join(',', columns);
        List<string> kept = [];
        if (File.Exists(path))
        {
            var lines = File.ReadAllLines(path);
            if (lines.Length > 0 && lines[0] != header)
                throw new InvalidDataException($"{path}: existing log has columns '{lines[0]}', expected '{header}'");
            kept = lines.Skip(1).Where(l => l.Length > 0 && (keepRow?.Invoke(l.Split(',')[0]) ?? true)).ToList();
        }
        FaceFusion.Compress.Assets.AtomicFile.WriteAllLines(path, new[] { header }.Concat(kept));
        _writer = FaceFusion.Compress.Assets.AtomicFile.AppendText(path);
        _csv = CsvHelper.CsvWriter.Create(_writer);
    }

    public void Write(IReadOnlyDictionary<string, double> values)
    {
        var fields = Columns.Select(c => values.TryGetValue(c, out var v) ? Format(v) : "").ToArray();
        _csv.WriteRecord(fields);
        _csv.Flush();
        _writer.Flush();
    }

    private static string Format(double v) =>
        v == Math.Floor(v) && Math.Abs(v) < 1e15 ? ((long)v).ToString(CultureInfo.InvariantCulture) : v.ToString("G7", CultureInfo.InvariantCulture);

    public void Dispose()
    {
        _csv.Dispose();
        _writer.Dispose();
    }
}
