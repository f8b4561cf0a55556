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
    /// <summary>
    /// With pseudo targets on (<see cref="FaceSwapData.PseudoTargetNeighbours"/>): [B,3,R,R] in [−1,1], for a cross pair a
    /// face of the source's person whose 68 landmarks are among the closest to the target's (the source person in
    /// about the target's pose and expression), for a same-identity pair the target itself. Null when off.
    /// </summary>
    public Tensor? PseudoTarget { get; init; }
    /// <summary>Dataset indices of <see cref="PseudoTarget"/>'s faces (null when off).</summary>
    public int[]? PseudoIndices { get; init; }

    public void Dispose()
    {
        Target.Dispose(); Source.Dispose(); SourceImage.Dispose(); Same.Dispose(); FaceMask.Dispose(); RegionMask.Dispose();
        PseudoTarget?.Dispose();
    }
}

/// <summary>
/// One split of a prepared dataset held in memory at one resolution (uint8 crops, embeddings, landmark masks),
/// and the pair sampler: a target face and a source identity, the same person for a given fraction of pairs.
/// Sampling depends only on (seed, step), so a resumed run draws the same batches as an uninterrupted one.
/// </summary>
public sealed class FaceSwapData : IDisposable
{
    // In memory: every face decoded once ([N,3,R,R] uint8 and masks). Streamed (datasets above the memory budget):
    // faces are decoded when a batch needs them, with a bounded cache; the pixels are identical either way.
    private readonly Tensor? _crops;      // [N,3,R,R] uint8
    private readonly Tensor? _masks;      // [N,1,R,R] uint8
    private readonly Tensor? _regions;    // [N,1,R,R] uint8: eyes and mouth
    private readonly Tensor _embeddings;  // [N,512] float
    private readonly int[][] _byIdentity;
    private readonly int[] _identityOf;
    private readonly string _datasetDir;
    private readonly int _storedSize;
    private readonly Dictionary<int, (byte[] Pixels, byte[] Mask, byte[] Region)> _cache = new();
    private readonly Queue<int> _cacheOrder = new();
    private readonly int _cacheFaces;

    public IReadOnlyList<FaceRecord> Records { get; }
    public int Resolution { get; }
    public int Count => Records.Count;
    public int IdentityCount => _byIdentity.Length;
    /// <summary>
    /// When set, batch source embeddings are computed from the source crops ([n,3,R,R] in [−1,1], no gradients) instead
    /// of taken from the dataset's precomputed fr_feature embeddings: training on another recogniser's embeddings.
    /// </summary>
    public Func<Tensor, Tensor>? SourceEmbedder { get; set; }

    private int _pseudoNeighbours;
    private int[][][]? _nearest; // [face][identity] → the closest faces of that identity by landmarks, nearest first

    /// <summary>
    /// Cross-identity supervision: for each cross pair, draw one of this many faces of the source's person closest to
    /// the target in landmark space as <see cref="SwapBatch.PseudoTarget"/> (0: off). The pseudo target is drawn from a
    /// random stream of its own, so pairs, sources and flips are the same as with it off.
    /// </summary>
    public int PseudoTargetNeighbours
    {
        get => _pseudoNeighbours;
        set
        {
            if (value < 0) throw new ArgumentOutOfRangeException(nameof(value), "pseudo-target neighbours must be ≥ 0");
            _pseudoNeighbours = value;
            _nearest = value > 0 ? NearestByLandmarks(value) : null;
        }
    }

    /// <summary>For every face and identity, the <paramref name="k"/> faces of that identity with the closest 68 landmarks
    /// (in crop coordinates normalised to [0,1], the crops all aligned to one template), excluding the face itself.</summary>
    private int[][][] NearestByLandmarks(int k)
    {
        int n = Count;
        var points = new float[n][];
        for (int i = 0; i < n; i++)
        {
            var lm = Records[i].LandmarkPoints();
            double scale = 1.0 / Records[i].CropSize;
            points[i] = new float[lm.Length * 2];
            for (int j = 0; j < lm.Length; j++) { points[i][2 * j] = (float)(lm[j].X * scale); points[i][2 * j + 1] = (float)(lm[j].Y * scale); }
        }
        var nearest = new int[n][][];
        Parallel.For(0, n, i =>
        {
            nearest[i] = new int[_byIdentity.Length][];
            for (int id = 0; id < _byIdentity.Length; id++)
            {
                var pool = _byIdentity[id];
                nearest[i][id] = pool.Where(j => j != i && points[j].Length == points[i].Length)
                    .Select(j => (j, d: SquaredDistance(points[i], points[j])))
                    .OrderBy(p => p.d).ThenBy(p => p.j).Take(k).Select(p => p.j).ToArray();
            }
        });
        return nearest;
    }

    private static float SquaredDistance(float[] a, float[] b)
    {
        float sum = 0;
        for (int i = 0; i < a.Length; i++) { float d = a[i] - b[i]; sum += d * d; }
        return sum;
    }

    /// <summary>True when faces are decoded on demand because the split exceeds the memory budget.</summary>
    public bool Streaming => _crops is null;

    /// <summary>
    /// Memory for decoded faces before a split is streamed instead: 2 GB, or FFC_DATA_MEMORY_MB.
    /// </summary>
    public static long DefaultMemoryBudget =>
        long.TryParse(Environment.GetEnvironmentVariable("FFC_DATA_MEMORY_MB"), out var mb) && mb >= 0 ? mb * 1024 * 1024 : 2048L * 1024 * 1024;

    /// <summary>Loads the faces of <paramref name="split"/> (all splits when null) at <paramref name="resolution"/>.</summary>
    /// <param name="datasetDir">A prepared dataset folder (`ffc data prepare`).</param>
    /// <param name="split">train, val or test; null for all.</param>
    /// <param name="resolution">Side of the square crops, in pixels.</param>
    /// <param name="limit">Use only the first this many faces (quick runs), or all when null.</param>
    /// <param name="memoryBudget">Bytes of decoded faces kept in memory; a larger split is streamed (default <see cref="DefaultMemoryBudget"/>).</param>
    public FaceSwapData(string datasetDir, string? split, int resolution, int? limit = null, long? memoryBudget = null)
    {
        var all = FaceManifest.Read(Path.Combine(datasetDir, FaceManifest.FileName));
        var records = all.Where(r => split is null || r.Split == split).ToList();
        if (limit is int l) records = records.Take(l).ToList();
        if (records.Count == 0) throw new InvalidDataException($"{datasetDir}: no faces in split '{split}'");
        Records = records;
        Resolution = resolution;
        _datasetDir = datasetDir;
        var embeddings = FaceManifest.ReadAllEmbeddings(datasetDir);
        var sizes = Directory.GetDirectories(Path.Combine(datasetDir, "crops")).Select(d => int.Parse(Path.GetFileName(d))).Order().ToList();
        // The smallest stored size that is at least the training resolution, resized down when larger.
        _storedSize = sizes.FirstOrDefault(s => s >= resolution, sizes.Max());
        var emb = new float[records.Count * FaceManifest.EmbeddingSize];
        for (int i = 0; i < records.Count; i++)
            Array.Copy(embeddings[records[i].EmbeddingOffset], 0, emb, i * FaceManifest.EmbeddingSize, FaceManifest.EmbeddingSize);
        _embeddings = tensor(emb, [records.Count, FaceManifest.EmbeddingSize]);
        long faceBytes = 5L * resolution * resolution;
        _cacheFaces = (int)Math.Clamp((memoryBudget ?? DefaultMemoryBudget) / faceBytes, 64, int.MaxValue);
        if ((long)records.Count * faceBytes <= (memoryBudget ?? DefaultMemoryBudget))
        {
            int plane = resolution * resolution;
            var pixels = new byte[records.Count * 3 * plane];
            var masks = new byte[records.Count * plane];
            var regions = new byte[records.Count * plane];
            Parallel.For(0, records.Count, i =>
            {
                var (p, m, r) = Decode(i);
                Array.Copy(p, 0, pixels, i * 3 * plane, 3 * plane);
                Array.Copy(m, 0, masks, i * plane, plane);
                Array.Copy(r, 0, regions, i * plane, plane);
            });
            _crops = tensor(pixels, [records.Count, 3, resolution, resolution]);
            _masks = tensor(masks, [records.Count, 1, resolution, resolution]);
            _regions = tensor(regions, [records.Count, 1, resolution, resolution]);
        }
        var identities = records.Select(r => r.Identity).Distinct().Order(StringComparer.Ordinal).ToList();
        var index = identities.Select((id, k) => (id, k)).ToDictionary(p => p.id, p => p.k);
        _identityOf = records.Select(r => index[r.Identity]).ToArray();
        _byIdentity = identities.Select(id => Enumerable.Range(0, records.Count).Where(i => records[i].Identity == id).ToArray()).ToArray();
    }

    /// <summary>One face: CHW pixels, face mask and eyes/mouth mask at the data resolution.</summary>
    private (byte[] Pixels, byte[] Mask, byte[] Region) Decode(int i)
    {
        var r = Records[i];
        int resolution = Resolution, plane = resolution * resolution;
        var image = RgbImage.Load(Path.Combine(_datasetDir, "crops", _storedSize.ToString(), Path.GetFileName(r.CropFile)));
        if (image.Width != resolution) image = image.Resize(resolution, resolution);
        var pixels = new byte[3 * plane];
        for (int p = 0; p < plane; p++)
            for (int c = 0; c < 3; c++) pixels[c * plane + p] = image.Pixels[p * 3 + c];
        var mask = new byte[plane];
        var region = new byte[plane];
        var points = r.LandmarkPoints();
        FaceRegion.Rasterize(points, (double)resolution / r.CropSize, resolution, mask);
        FaceRegion.RasterizeEyesAndMouth(points, (double)resolution / r.CropSize, resolution, region);
        return (pixels, mask, region);
    }

    /// <summary>Faces by index as uint8 tensors [n,3,R,R], [n,1,R,R], [n,1,R,R] (from memory, or decoded through the cache).</summary>
    private (Tensor Crops, Tensor? Masks, Tensor? Regions) Faces(int[] indices, bool withMasks = true)
    {
        if (_crops is not null)
        {
            var at = tensor(indices.Select(i => (long)i).ToArray());
            return (_crops.index_select(0, at), withMasks ? _masks!.index_select(0, at) : null, withMasks ? _regions!.index_select(0, at) : null);
        }
        int plane = Resolution * Resolution;
        var decoded = new (byte[] Pixels, byte[] Mask, byte[] Region)[indices.Length];
        var missing = indices.Distinct().Where(i => !_cache.ContainsKey(i)).ToArray();
        var fresh = new (byte[], byte[], byte[])[missing.Length];
        Parallel.For(0, missing.Length, k => fresh[k] = Decode(missing[k]));
        for (int k = 0; k < missing.Length; k++)
        {
            _cache[missing[k]] = fresh[k];
            _cacheOrder.Enqueue(missing[k]);
            while (_cacheOrder.Count > _cacheFaces) _cache.Remove(_cacheOrder.Dequeue());
        }
        for (int k = 0; k < indices.Length; k++) decoded[k] = _cache.TryGetValue(indices[k], out var d) ? d : Decode(indices[k]);
        var pixels = new byte[indices.Length * 3 * plane];
        var masks = new byte[indices.Length * plane];
        var regions = new byte[indices.Length * plane];
        for (int k = 0; k < indices.Length; k++)
        {
            Array.Copy(decoded[k].Pixels, 0, pixels, k * 3 * plane, 3 * plane);
            Array.Copy(decoded[k].Mask, 0, masks, k * plane, plane);
            Array.Copy(decoded[k].Region, 0, regions, k * plane, plane);
        }
        return (tensor(pixels, [indices.Length, 3, Resolution, Resolution]),
            withMasks ? tensor(masks, [indices.Length, 1, Resolution, Resolution]) : null,
            withMasks ? tensor(regions, [indices.Length, 1, Resolution, Resolution]) : null);
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
        var pseudoRng = new Random(unchecked((int)((ulong)(seed * 1_000_003L + step + 7_777_777L) * 0xC2B2AE3D27D4EB4FUL >> 33)));
        return Gather(targets, sources, same, flips, PseudoIndicesFor(targets, sources, same, pseudoRng));
    }

    private int[]? PseudoIndicesFor(int[] targets, int[] sources, float[] same, Random rng)
    {
        if (_nearest is null) return null;
        var pseudo = new int[targets.Length];
        for (int i = 0; i < targets.Length; i++)
        {
            var candidates = _nearest[targets[i]][_identityOf[sources[i]]];
            pseudo[i] = same[i] > 0 || candidates.Length == 0 ? targets[i] : candidates[rng.Next(candidates.Length)];
        }
        return pseudo;
    }

    /// <summary>A fixed batch of explicit (target, source) pairs, e.g. for evaluation.</summary>
    public SwapBatch Pairs(int[] targets, int[] sources)
    {
        var same = targets.Select((t, i) => _identityOf[t] == _identityOf[sources[i]] ? 1f : 0f).ToArray();
        return Gather(targets, sources, same, new bool[targets.Length], PseudoIndicesFor(targets, sources, same, new Random(17)));
    }

    public int IdentityOf(int index) => _identityOf[index];
    public IReadOnlyList<int> FacesOf(int identity) => _byIdentity[identity];

    private SwapBatch Gather(int[] targets, int[] sources, float[] same, bool[] flips, int[]? pseudo)
    {
        using var scope = NewDisposeScope();
        var si = tensor(sources.Select(i => (long)i).ToArray());
        var (targetCrops, targetMasks, targetRegions) = Faces(targets);
        var target = targetCrops.to_type(ScalarType.Float32).div(127.5).sub(1);
        var mask = targetMasks!.to_type(ScalarType.Float32);
        var region = targetRegions!.to_type(ScalarType.Float32);
        Tensor? pseudoTarget = pseudo is null ? null : Faces(pseudo, withMasks: false).Crops.to_type(ScalarType.Float32).div(127.5).sub(1);
        if (flips.Any(f => f))
        {
            var flipMask = tensor(flips).view(-1, 1, 1, 1);
            target = where(flipMask, target.flip(3), target);
            mask = where(flipMask, mask.flip(3), mask);
            region = where(flipMask, region.flip(3), region);
            // The pseudo target mirrors with its target, so it stays in the target's (mirrored) pose.
            if (pseudoTarget is not null) pseudoTarget = where(flipMask, pseudoTarget.flip(3), pseudoTarget);
        }
        var sourceImage = Faces(sources, withMasks: false).Crops.to_type(ScalarType.Float32).div(127.5).sub(1);
        Tensor source;
        if (SourceEmbedder is { } embed) using (no_grad()) source = embed(sourceImage);
        else source = _embeddings.index_select(0, si);
        var batch = new SwapBatch
        {
            Target = target.MoveToOuterDisposeScope(),
            Source = source.MoveToOuterDisposeScope(),
            SourceImage = sourceImage.MoveToOuterDisposeScope(),
            Same = tensor(same).MoveToOuterDisposeScope(),
            FaceMask = mask.MoveToOuterDisposeScope(),
            RegionMask = region.MoveToOuterDisposeScope(),
            TargetIndices = targets, SourceIndices = sources,
            PseudoTarget = pseudoTarget?.MoveToOuterDisposeScope(), PseudoIndices = pseudo,
        };
        return batch;
    }

    public void Dispose()
    {
        _crops?.Dispose(); _masks?.Dispose(); _regions?.Dispose(); _embeddings.Dispose();
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
