using System.Text;
using System.Text.RegularExpressions;

namespace FaceFusion.Compress.Data;

/// <summary>
/// Assigns faces to train/val/test without leaks. Video frames go by blocks of consecutive frames (adjacent frames
/// are near duplicates), with guard frames dropped at the edges of val/test blocks; still-photo identities are
/// held out by identity, never split across sets.
/// </summary>
public sealed record SplitPolicy
{
    /// <summary>Frames per block.</summary>
    public int BlockFrames { get; init; } = 120;
    /// <summary>Frames dropped at each end of a val or test block so no neighbour of a train frame is held out.</summary>
    public int GuardFrames { get; init; } = 8;
    /// <summary>Fraction of still-photo identities that may enter train (0 for the bundled data: unseen people).</summary>
    public double StillTrainFraction { get; init; }

    /// <summary>
    /// Split of a video frame, or null for a guard frame. Blocks are numbered across all videos of one identity
    /// (<paramref name="blockOffset"/>), cycling train×4, val, train×4, test so every identity with ≥ 10 blocks
    /// gets all three.
    /// </summary>
    public string? ForVideoFrame(int frame, int blockOffset = 0)
    {
        int block = frame / BlockFrames;
        string split = SplitOfBlock(block + blockOffset);
        if (split == Splits.Train) return split;
        int within = frame % BlockFrames;
        return within < GuardFrames || within >= BlockFrames - GuardFrames ? null : split;
    }

    public static string SplitOfBlock(int block) => (block % 10) switch { 4 => Splits.Val, 9 => Splits.Test, _ => Splits.Train };

    /// <summary>Split of a still photo's identity: a stable hash, so reruns and other machines agree.</summary>
    public string ForStillIdentity(string identity)
    {
        double u = StableUnit(identity);
        if (u < StillTrainFraction) return Splits.Train;
        // Of the held-out identities, one third decide (val), two thirds are reported (test).
        return (u - StillTrainFraction) / Math.Max(1e-9, 1 - StillTrainFraction) < 1.0 / 3 ? Splits.Val : Splits.Test;
    }

    /// <summary>A value in [0,1) from FNV-1a of the text.</summary>
    public static double StableUnit(string text)
    {
        uint h = 2166136261;
        foreach (var b in Encoding.UTF8.GetBytes(text)) { h ^= b; h *= 16777619; }
        return h / 4294967296.0;
    }
}

/// <summary>Names identities from file names, with an alias table for files whose names say more than a rule can.</summary>
public sealed class IdentityNamer
{
    private readonly Dictionary<string, string> _aliases;

    public IdentityNamer(IReadOnlyDictionary<string, string>? aliases = null) =>
        _aliases = new Dictionary<string, string>(aliases ?? new Dictionary<string, string>(), StringComparer.OrdinalIgnoreCase);

    /// <summary>Loads `file,identity` lines (header optional, # comments allowed).</summary>
    public static IdentityNamer FromFile(string? path)
    {
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (path is not null && File.Exists(path))
        {
            int line = 0;
            foreach (var raw in File.ReadLines(path))
            {
                line++;
                var text = raw.Trim();
                if (text.Length == 0 || text.StartsWith('#') || (line == 1 && text.StartsWith("file,"))) continue;
                var parts = text.Split(',');
                if (parts.Length != 2 || parts[1].Trim().Length == 0)
                    throw new InvalidDataException($"{path}:{line}: expected 'file,identity'");
                map[parts[0].Trim()] = parts[1].Trim();
            }
        }
        return new IdentityNamer(map);
    }

    /// <summary>
    /// The alias when one is given; otherwise the file stem lower-cased without size/crop/edit suffixes and
    /// trailing numbers ("Justin-Bieber2_crop.jpg" → "justin-bieber", "franck_02045.jpg" → "franck").
    /// </summary>
    public string FromFileName(string fileName)
    {
        if (_aliases.TryGetValue(Path.GetFileName(fileName), out var alias)) return alias;
        var stem = Path.GetFileNameWithoutExtension(fileName).ToLowerInvariant();
        stem = Regex.Replace(stem, @"([_-](crop|small|edit|main|large|thumb))+\d*$", "");
        stem = Regex.Replace(stem, @"[_-]?\d+$", "");
        stem = Regex.Replace(stem, @"[^a-z0-9]+", "-").Trim('-');
        return stem.Length > 0 ? stem : "unknown";
    }
}
