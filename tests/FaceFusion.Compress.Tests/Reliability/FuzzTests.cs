using System.Text;
using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Checkpoints;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Import;
using FaceFusion.Compress.Recipes;
using FaceFusion.Compress.Tests.Export;
using FaceFusion.Compress.Runtime;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Reliability;

/// <summary>
/// Bounded-time fuzzing of the parsers and loaders: thousands of mutated inputs, and only the documented error
/// types may come out (never a crash, a hang or an undocumented exception).
/// </summary>
public class FuzzTests
{
    private static byte[] Mutate(byte[] input, Random rng)
    {
        var bytes = (byte[])input.Clone();
        switch (rng.Next(4))
        {
            case 0: for (int i = 0; i < 1 + rng.Next(8); i++) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256); break;
            case 1: bytes = bytes[..rng.Next(bytes.Length)]; break;
            case 2: { int at = rng.Next(bytes.Length); bytes = bytes[..at].Concat(Enumerable.Range(0, rng.Next(1, 16)).Select(_ => (byte)rng.Next(256))).Concat(bytes[at..]).ToArray(); break; }
            default: { int a = rng.Next(bytes.Length), b = rng.Next(bytes.Length); (bytes[a], bytes[b]) = (bytes[b], bytes[a]); break; }
        }
        return bytes;
    }

    private static void Fuzz(byte[] seed, int iterations, Action<byte[]> parse, params Type[] documented)
    {
        var rng = new Random(seed.Length);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        for (int i = 0; i < iterations && DateTime.UtcNow < deadline; i++)
        {
            var input = Mutate(seed, rng);
            try { parse(input); }
            catch (Exception e) when (documented.Any(t => t.IsInstanceOfType(e))) { }
            catch (Exception e)
            {
                Assert.Fail($"iteration {i}: undocumented {e.GetType().Name}: {e.Message}");
            }
        }
    }

    [Fact]
    public void GraphJson_OnlyGivesInvalidData()
    {
        var json = Encoding.UTF8.GetBytes(SwapperArchitectures.Student(32).ToJson());
        Fuzz(json, 3000, b => NetworkGraph.FromJson(Encoding.UTF8.GetString(b), "fuzz.json"), typeof(InvalidDataException));
    }

    [Fact]
    public void RecipeParser_OnlyGivesRecipeErrors()
    {
        var recipe = Encoding.UTF8.GetBytes(File.ReadAllText(Path.Combine(FaceFusion.Compress.Assets.AssetPaths.FindRepositoryRoot()!, "recipes", "demo.yaml")));
        var path = Path.Combine(TestAssets.TempDir(), "fuzz.yaml");
        Fuzz(recipe, 3000, b => { File.WriteAllBytes(path, b); RecipeParser.Load(path); }, typeof(RecipeException));
    }

    [Fact]
    public void Manifest_OnlyGivesInvalidData()
    {
        var dir = TestAssets.TempDir();
        var path = Path.Combine(dir, FaceManifest.FileName);
        FaceManifest.Write(path, [new FaceRecord { Id = "a", Identity = "x", Split = "train", Landmarks = "1 2 3 4", Affine = "1 0 0 0 1 0", CropFile = "c.png" }]);
        var seed = File.ReadAllBytes(path);
        Fuzz(seed, 2000, b => { File.WriteAllBytes(path, b); FaceManifest.Read(path); }, typeof(InvalidDataException));
    }

    [Fact]
    public void SafetensorsAndCheckpoints_OnlyGiveInvalidData()
    {
        var dir = TestAssets.TempDir();
        using (var model = new GraphModule(SwapperArchitectures.Student(32))) Checkpoint.Save(dir, model);
        var weights = Path.Combine(dir, Checkpoint.WeightsFile);
        var seed = File.ReadAllBytes(weights);
        Fuzz(seed[..Math.Min(seed.Length, 4096)].Concat(seed[^64..]).ToArray(), 300, b =>
        {
            File.WriteAllBytes(weights, b);
            using var m = Checkpoint.Load(dir);
        }, typeof(InvalidDataException));
    }

    [Fact]
    public void OnnxImporter_OnlyGivesInvalidData()
    {
        var seed = File.ReadAllBytes(TestAssets.Assets.Landmarks);
        var path = Path.Combine(TestAssets.TempDir(), "fuzz.onnx");
        Fuzz(seed, 200, b =>
        {
            File.WriteAllBytes(path, b);
            var imported = OnnxImporter.Import(path);
            foreach (var t in imported.Weights.Values) t.Dispose();
        }, typeof(InvalidDataException));
    }

    [Fact]
    public void Images_OnlyGiveImageLoadErrors_AndHugeImagesAreRefused()
    {
        var seed = File.ReadAllBytes(TestAssets.Still("audrey_crop.jpg"));
        Fuzz(seed, 1000, b => RgbImage.Decode(b, "fuzz.jpg"), typeof(ImageLoadException));
        // A PNG that declares 20000×20000 pixels is refused before any pixel buffer is allocated.
        var info = new SKImageInfo(20000, 4, SKColorType.Gray8, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        using var data = SKImage.FromBitmap(bitmap).Encode(SKEncodedImageFormat.Png, 100);
        var png = data.ToArray();
        // Patch the IHDR height to 20000 (bytes 20..23, big-endian) and fix the chunk's CRC: a valid header.
        png[20] = 0; png[21] = 0; png[22] = 0x4E; png[23] = 0x20;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), PngText.Crc(png.AsSpan(12, 17)));
        var e = Assert.Throws<ImageLoadException>(() => RgbImage.Decode(png, "huge.png"));
        Assert.Contains("huge.png", e.Message);
        Assert.Contains("too large", e.Message);
    }
}

public class ConcurrencyTests
{
    [Fact]
    public void OneSession_ManyThreads_GivesTheSequentialOutputs()
    {
        var path = Path.Combine(TestAssets.TempDir(), "s.onnx");
        using (var model = ExportParityTests.Prepared(SwapperArchitectures.Student(32))) FaceFusion.Compress.Export.OnnxExporter.ExportToFile(model, path);
        using var swapper = new OrtSwapper(path, new OrtSettings { IntraOpThreads = 1 });
        var rng = new Random(3);
        var inputs = Enumerable.Range(0, 8).Select(_ => (
            Target: Enumerable.Range(0, 3 * 32 * 32).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray(),
            Source: IdentityEmbedder.Normalize(Enumerable.Range(0, 512).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray()))).ToList();
        var expected = inputs.Select(i => swapper.Run(i.Target, i.Source, 1).Output).ToList();
        int mismatches = 0;
        Parallel.For(0, 8 * 200, new ParallelOptions { MaxDegreeOfParallelism = 8 }, k =>
        {
            var (t, s) = inputs[k % 8];
            if (!swapper.Run(t, s, 1).Output.SequenceEqual(expected[k % 8])) Interlocked.Increment(ref mismatches);
        });
        Assert.Equal(0, mismatches);
    }
}
