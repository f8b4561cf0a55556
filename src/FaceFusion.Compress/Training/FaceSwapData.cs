using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Training;

/// <summary>A batch of swap pairs. All tensors belong to the batch: dispose it.</summary>
public sealed class SwapBatch : IDisposable
{
    /// <summary>Target crops [B,3,R,R] in [−1,1].</summary>
    public required Tensor Target { get; init; }
    /// <summary>Source identity embeddings [B,512], L2-normalised.</summary>
    public required Tensor Source { get; init; }
    /// <summary>Source face crops [B,3,R,R] (for sample grids).</summary>
    public required Tensor SourceImage { get; init; }
    /// <summary>1 where source and target are the same person, else 0: [B].</summary>
    public required Tensor Same { get; init; }
    /// <summary>Face-region masks from the 68 landmarks [B,1,R,R] in {0,1}.</summary>
    public required Tensor FaceMask { get; init; }
    /// <summary>Eyes and mouth regions from the 68 landmarks [B,1,R,R] in {0,1}.</summary>
    public required Tensor RegionMask { get; init; }
    public required int[] TargetIndices { get; init; }
    public required int[] SourceIndices { get; init; }

    public void Dispose()
    {
        Target.Dispose(); Source.Dispose(); SourceImage.Dispose(); Same.Dispose(); FaceMask.Dispose(); RegionMask.Dispose();
    }
}

/// <summary>
/// One split of a prepared dataset held in memory at one resolution (uint8 crops, embeddings, landmark masks),
/// and the pair sampler: a target face and a source identity, the same person for a given fraction of pairs.
/// Sampling depends only on (seed, step), so a resumed run draws the same batches as an uninterrupted one.
/// </summary>
public sealed class FaceSwapData : IDisposable
{
    private readonly Tensor _crops;      // [N,3,R,R] uint8
    private readonly Tensor _masks;      // [N,1,R,R] uint8
    private readonly Tensor _regions;    // [N,1,R,R] uint8: eyes and mouth
    private readonly Tensor _embeddings; // [N,512] float
    private readonly int[][] _byIdentity;
    private readonly int[] _identityOf;

    public IReadOnlyList<FaceRecord> Records { get; }
    public int Resolution { get; }
    public int Count => Records.Count;
    public int IdentityCount => _byIdentity.Length;

    /// <summary>Loads the faces of <paramref name="split"/> (all splits when null) at <paramref name="resolution"/>.</summary>
    public FaceSwapData(string datasetDir, string? split, int resolution, int? limit = null)
    {
        var all = FaceManifest.Read(Path.Combine(datasetDir, FaceManifest.FileName));
        var records = all.Where(r => split is null || r.Split == split).ToList();
        if (limit is int l) records = records.Take(l).ToList();
        if (records.Count == 0) throw new InvalidDataException($"{datasetDir}: no faces in split '{split}'");
        Records = records;
        Resolution = resolution;
        var embeddings = FaceManifest.ReadAllEmbeddings(datasetDir);
        var sizes = Directory.GetDirectories(Path.Combine(datasetDir, "crops")).Select(d => int.Parse(Path.GetFileName(d))).Order().ToList();
        // The smallest stored size that is at least the training resolution, resized down when larger.
        int stored = sizes.FirstOrDefault(s => s >= resolution, sizes.Max());
        var pixels = new byte[records.Count * 3 * resolution * resolution];
        var masks = new byte[records.Count * resolution * resolution];
        var regions = new byte[records.Count * resolution * resolution];
        var emb = new float[records.Count * FaceManifest.EmbeddingSize];
        Parallel.For(0, records.Count, i =>
        {
            var r = records[i];
            var image = RgbImage.Load(Path.Combine(datasetDir, "crops", stored.ToString(), Path.GetFileName(r.CropFile)));
            if (image.Width != resolution) image = image.Resize(resolution, resolution);
            int plane = resolution * resolution, offset = i * 3 * plane;
            for (int p = 0; p < plane; p++)
                for (int c = 0; c < 3; c++) pixels[offset + c * plane + p] = image.Pixels[p * 3 + c];
            var points = r.LandmarkPoints();
            FaceRegion.Rasterize(points, (double)resolution / r.CropSize, resolution, masks.AsSpan(i * plane, plane));
            FaceRegion.RasterizeEyesAndMouth(points, (double)resolution / r.CropSize, resolution, regions.AsSpan(i * plane, plane));
            Array.Copy(embeddings[r.EmbeddingOffset], 0, emb, i * FaceManifest.EmbeddingSize, FaceManifest.EmbeddingSize);
        });
        _crops = tensor(pixels, [records.Count, 3, resolution, resolution]);
        _masks = tensor(masks, [records.Count, 1, resolution, resolution]);
        _regions = tensor(regions, [records.Count, 1, resolution, resolution]);
        _embeddings = tensor(emb, [records.Count, FaceManifest.EmbeddingSize]);
        var identities = records.Select(r => r.Identity).Distinct().Order(StringComparer.Ordinal).ToList();
        var index = identities.Select((id, k) => (id, k)).ToDictionary(p => p.id, p => p.k);
        _identityOf = records.Select(r => index[r.Identity]).ToArray();
        _byIdentity = identities.Select(id => Enumerable.Range(0, records.Count).Where(i => records[i].Identity == id).ToArray()).ToArray();
    }

    /// <summary>Draws a batch for <paramref name="step"/>; deterministic in (seed, step).</summary>
    public SwapBatch Sample(int batchSize, double sameFraction, int seed, long step, bool flip = true)
    {
        // A fixed mix of (seed, step): HashCode.Combine is randomised per process and would break resumes.
        var rng = new Random(unchecked((int)((ulong)(seed * 1_000_003L + step) * 0x9E3779B97F4A7C15UL >> 33)));
        var targets = new int[batchSize];
        var sources = new int[batchSize];
        var same = new float[batchSize];
        var flips = new bool[batchSize];
        for (int i = 0; i < batchSize; i++)
        {
            targets[i] = rng.Next(Count);
            int identity = _identityOf[targets[i]];
            bool isSame = rng.NextDouble() < sameFraction || _byIdentity.Length == 1;
            if (isSame)
            {
                // Half of the same-identity pairs use the target's own embedding (pure reconstruction).
                var pool = _byIdentity[identity];
                sources[i] = rng.NextDouble() < 0.5 ? targets[i] : pool[rng.Next(pool.Length)];
            }
            else
            {
                int other = rng.Next(_byIdentity.Length - 1);
                if (other >= identity) other++;
                var pool = _byIdentity[other];
                sources[i] = pool[rng.Next(pool.Length)];
            }
            same[i] = isSame ? 1f : 0f;
            flips[i] = flip && rng.NextDouble() < 0.5;
        }
        return Gather(targets, sources, same, flips);
    }

    /// <summary>A fixed batch of explicit (target, source) pairs, e.g. for evaluation.</summary>
    public SwapBatch Pairs(int[] targets, int[] sources) =>
        Gather(targets, sources, targets.Select((t, i) => _identityOf[t] == _identityOf[sources[i]] ? 1f : 0f).ToArray(), new bool[targets.Length]);

    public int IdentityOf(int index) => _identityOf[index];
    public IReadOnlyList<int> FacesOf(int identity) => _byIdentity[identity];

    private SwapBatch Gather(int[] targets, int[] sources, float[] same, bool[] flips)
    {
        using var scope = NewDisposeScope();
        var ti = tensor(targets.Select(i => (long)i).ToArray());
        var si = tensor(sources.Select(i => (long)i).ToArray());
        var target = _crops.index_select(0, ti).to_type(ScalarType.Float32).div(127.5).sub(1);
        var mask = _masks.index_select(0, ti).to_type(ScalarType.Float32);
        var region = _regions.index_select(0, ti).to_type(ScalarType.Float32);
        if (flips.Any(f => f))
        {
            var flipMask = tensor(flips).view(-1, 1, 1, 1);
            target = where(flipMask, target.flip(3), target);
            mask = where(flipMask, mask.flip(3), mask);
            region = where(flipMask, region.flip(3), region);
        }
        var batch = new SwapBatch
        {
            Target = target.MoveToOuterDisposeScope(),
            Source = _embeddings.index_select(0, si).MoveToOuterDisposeScope(),
            SourceImage = _crops.index_select(0, si).to_type(ScalarType.Float32).div(127.5).sub(1).MoveToOuterDisposeScope(),
            Same = tensor(same).MoveToOuterDisposeScope(),
            FaceMask = mask.MoveToOuterDisposeScope(),
            RegionMask = region.MoveToOuterDisposeScope(),
            TargetIndices = targets, SourceIndices = sources,
        };
        return batch;
    }

    public void Dispose()
    {
        _crops.Dispose(); _masks.Dispose(); _regions.Dispose(); _embeddings.Dispose();
    }
}

/// <summary>The face region of a crop: the convex hull of the 68 landmarks (jaw line and brows), filled.</summary>
public static class FaceRegion
{
    public static void Rasterize(IReadOnlyList<(double X, double Y)> landmarks, double scale, int size, Span<byte> mask)
    {
        mask.Clear();
        if (landmarks.Count < 3) return;
        var hull = ConvexHull(landmarks.Select(p => (p.X * scale, p.Y * scale)).ToList());
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                if (Inside(hull, x + 0.5, y + 0.5)) mask[y * size + x] = 1;
    }

    /// <summary>The hulls of each eye (points 36–41, 42–47) and of the mouth (48–59), slightly enlarged, filled.</summary>
    public static void RasterizeEyesAndMouth(IReadOnlyList<(double X, double Y)> landmarks, double scale, int size, Span<byte> mask)
    {
        mask.Clear();
        if (landmarks.Count < 68) return;
        foreach (var (from, to) in new[] { (36, 41), (42, 47), (48, 59) })
        {
            var part = Enumerable.Range(from, to - from + 1).Select(i => (landmarks[i].X * scale, landmarks[i].Y * scale)).ToList();
            double cx = part.Average(p => p.Item1), cy = part.Average(p => p.Item2);
            var hull = ConvexHull(part.Select(p => (cx + (p.Item1 - cx) * 1.4, cy + (p.Item2 - cy) * 1.8)).ToList());
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    if (hull.Count >= 3 && Inside(hull, x + 0.5, y + 0.5)) mask[y * size + x] = 1;
        }
    }

    private static List<(double X, double Y)> ConvexHull(List<(double X, double Y)> points)
    {
        points = points.Distinct().OrderBy(p => p.X).ThenBy(p => p.Y).ToList();
        if (points.Count < 3) return points;
        static double Cross((double X, double Y) o, (double X, double Y) a, (double X, double Y) b) => (a.X - o.X) * (b.Y - o.Y) - (a.Y - o.Y) * (b.X - o.X);
        var hull = new List<(double X, double Y)>();
        foreach (var pass in new[] { points, Enumerable.Reverse(points).ToList() })
        {
            int start = hull.Count;
            foreach (var p in pass)
            {
                while (hull.Count >= start + 2 && Cross(hull[^2], hull[^1], p) <= 0) hull.RemoveAt(hull.Count - 1);
                hull.Add(p);
            }
            hull.RemoveAt(hull.Count - 1);
        }
        return hull;
    }

    private static bool Inside(List<(double X, double Y)> polygon, double x, double y)
    {
        bool inside = false;
        for (int i = 0, j = polygon.Count - 1; i < polygon.Count; j = i++)
        {
            var (xi, yi) = polygon[i];
            var (xj, yj) = polygon[j];
            if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
        }
        return inside;
    }
}
