using System.Text;
using Xunit.Abstractions;
using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Judging;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Judging;

/// <summary>
/// The judge against face-api.js's own descriptors (`../shared/fixtures/judge`: 70 rows computed by face-api 1.7.15
/// from the exact input pixels stored beside them), and its parts on their own.
/// </summary>
public class IdentityJudgeTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-3;

    internal sealed record ReferenceRow(string Identity, string Region, string InputPng, float[] Descriptor);

    internal static List<ReferenceRow> ReadReference(string folder)
    {
        var path = Path.Combine(folder, "faceapi-reference.csv");
        var lines = File.ReadAllLines(path);
        Assert.Equal("file,identity,region,face,box,input_png,input_sha256,preprocessing,descriptor", lines[0]);
        var rows = new List<ReferenceRow>();
        foreach (var line in lines.Skip(1).Where(l => l.Length > 0))
        {
            // Eight plain fields, then the quoted descriptor.
            int quote = line.IndexOf('"');
            var fields = line[..quote].TrimEnd(',').Split(',');
            var descriptor = line[(quote + 1)..line.LastIndexOf('"')].Split(',')
                .Select(v => float.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal(8, fields.Length);
            Assert.Equal(128, descriptor.Length);
            rows.Add(new ReferenceRow(fields[1], fields[2], fields[5], descriptor));
        }
        return rows;
    }

    private static double MaxAbsDiff(float[] a, float[] b) => a.Zip(b).Max(p => Math.Abs((double)p.First - p.Second));

    [Fact]
    public void EveryReferenceRow_MatchesFaceApi_Within1e3PerElement()
    {
        var folder = TestAssets.SharedFixture("judge");
        var rows = ReadReference(folder);
        Assert.Equal(70, rows.Count);
        using var judge = IdentityJudge.Open(TestAssets.Assets);
        var regions = rows.Select(r => RgbImage.Load(Path.Combine(folder, r.InputPng))).ToList();
        var descriptors = judge.Describe(regions);
        var diffs = rows.Select((r, i) => (r.InputPng, Diff: MaxAbsDiff(descriptors[i], r.Descriptor))).ToList();
        var worst = diffs.MaxBy(d => d.Diff);
        output.WriteLine($"max abs diff over {rows.Count} rows: {worst.Diff:E3} ({worst.InputPng}); mean of the row maxima {diffs.Average(d => d.Diff):E3}");
        Assert.True(worst.Diff <= Tolerance, $"{worst.InputPng}: max abs diff {worst.Diff:E2} > {Tolerance:E0}");
        // Every region kind is covered, so the full crops, the dlib boxes and the stills' regions all pass.
        Assert.Equal(["arcface-dlib-box", "faceapi-detect", "full-crop"], rows.Select(r => r.Region).Distinct().Order());
    }

    [Fact]
    public void DescribeCrops_CutsTheDlibBox_AndMatchesTheDlibBoxRows()
    {
        var folder = TestAssets.SharedFixture("judge");
        var rows = ReadReference(folder);
        var full = rows.Where(r => r.Region == "full-crop").ToList();
        var boxes = rows.Where(r => r.Region == "arcface-dlib-box").ToList();
        Assert.Equal(24, full.Count);
        using var judge = IdentityJudge.Open(TestAssets.Assets);
        using var scope = NewDisposeScope();
        // Crops as the swapper sees them: [N,3,256,256] in [−1,1].
        var crops = stack(full.Select(r =>
        {
            var img = RgbImage.Load(Path.Combine(folder, r.InputPng));
            return tensor(img.Pixels, [img.Height, img.Width, 3]).to(float32).permute(2, 0, 1).div(127.5).sub(1);
        }).ToArray());
        var described = judge.DescribeCrops(crops);
        Assert.Equal([24L, 128L], described.shape);
        var values = described.data<float>().ToArray();
        double cropWorst = 0;
        for (int i = 0; i < full.Count; i++)
        {
            var box = boxes.Single(b => b.InputPng == full[i].InputPng.Replace(".png", "-dlibbox.png"));
            var diff = MaxAbsDiff(values.AsSpan(i * 128, 128).ToArray(), box.Descriptor);
            cropWorst = Math.Max(cropWorst, diff);
            Assert.True(diff <= Tolerance, $"{full[i].InputPng}: DescribeCrops vs its dlib-box row: max abs diff {diff:E2}");
        }
        output.WriteLine($"DescribeCrops vs the dlib-box rows: max abs diff {cropWorst:E3}");
        // The box matters: the whole crop gives a different descriptor.
        var whole = full[0].Descriptor;
        Assert.True(IdentityJudge.Distance(values.AsSpan(0, 128).ToArray(), whole) > 0.05);
    }

    [Theory]
    [InlineData("franck-f01105")]
    [InlineData("cap12-edit-f01092")]
    public void AsymmetricResize_MatchesTensorFlowsResizedInput(string name)
    {
        var folder = TestAssets.SharedFixture("judge");
        var bytes = File.ReadAllBytes(Path.Combine(folder, $"input150-{name}.f32"));
        Assert.Equal(150 * 150 * 3 * 4, bytes.Length);
        var expected = new float[150 * 150 * 3];
        Buffer.BlockCopy(bytes, 0, expected, 0, bytes.Length);
        using var resized = IdentityJudge.Square150(RgbImage.Load(Path.Combine(folder, "inputs", name + ".png")));
        using var hwc = resized[0].permute(1, 2, 0).contiguous();
        var actual = hwc.data<float>().ToArray();
        double worst = actual.Zip(expected).Max(p => Math.Abs((double)p.First - p.Second));
        output.WriteLine($"{name}: resize max abs diff {worst:E3}");
        Assert.True(worst <= Tolerance, $"{name}: resize max abs diff {worst:E2} (0..255 units)");
        // PyTorch's half-pixel bilinear is not this resize: the check can tell them apart.
        using var chw = tensor(RgbImage.Load(Path.Combine(folder, "inputs", name + ".png")).Pixels, [256, 256, 3]).to(float32).permute(2, 0, 1).unsqueeze(0);
        using var halfPixel = nn.functional.interpolate(chw, [150, 150], mode: InterpolationMode.Bilinear, align_corners: false);
        using var halfHwc = halfPixel[0].permute(1, 2, 0).contiguous();
        double halfWorst = halfHwc.data<float>().ToArray().Zip(expected).Max(p => Math.Abs((double)p.First - p.Second));
        Assert.True(halfWorst > 1, $"half-pixel resize differs by only {halfWorst}");
    }

    [Fact]
    public void PadToSquare_CentresTheShortSide_RoundingHalfTheDifferenceAfter()
    {
        // 4 wide, 1 high: 3 rows of zeros, round(1.5) = 2 after, 1 before; then resized to 150 (row i samples i·4/150).
        var img = new RgbImage(4, 1);
        for (int x = 0; x < 4; x++) for (int c = 0; c < 3; c++) img[x, 0, c] = 200;
        using var square = IdentityJudge.Square150(img);
        var rows = square[0, 0, .., 0].data<float>().ToArray();
        // Source row 1 holds the image: output rows whose coordinate i·4/150 falls in (0, 2) see it.
        Assert.Equal(0f, rows[0]);
        int firstLit = Array.FindIndex(rows, v => v > 0);
        int lastLit = Array.FindLastIndex(rows, v => v > 0);
        Assert.Equal(1, firstLit);                 // 1·4/150 = 0.027 lies between row 0 and row 1
        Assert.Equal(74, lastLit);                 // 74·4/150 = 1.97 < 2; 75·4/150 = 2 is padding row 2
        Assert.Equal(200 * (2 - 38 * 4 / 150.0), rows[38], 3); // 38·4/150 = 1.013: mostly row 1, a little of row 2
    }

    [Fact]
    public void Open_RefusesACorruptWeightsFile_NamingIt()
    {
        var dir = TestAssets.TempDir();
        var manifest = Path.Combine(dir, "face_recognition_model-weights_manifest.json");
        var weights = Path.Combine(dir, "face_recognition_model.bin");
        File.Copy(TestAssets.Assets.JudgeManifest, manifest);
        var bytes = File.ReadAllBytes(TestAssets.Assets.JudgeWeights);
        bytes[1000] ^= 0x40;
        File.WriteAllBytes(weights, bytes);
        var error = Assert.Throws<InvalidDataException>(() => IdentityJudge.Open(manifest, weights));
        Assert.Contains(weights, error.Message);
        Assert.Contains("SHA-256", error.Message);
        File.Delete(weights);
        var missing = Assert.Throws<FileNotFoundException>(() => IdentityJudge.Open(manifest, weights));
        Assert.Contains(weights, missing.Message);
    }

    [Fact]
    public void TfjsReader_DequantizesUint8AndFloat16_ReadsFloat32_AndRefusesTruncatedShards()
    {
        var dir = TestAssets.TempDir();
        var shard = new MemoryStream();
        shard.Write([0, 10, 255]);                                          // uint8: q·0.5 − 1
        shard.Write(BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)1.5f)));
        shard.Write(BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)(-2f))));
        shard.Write(BitConverter.GetBytes(3.25f));
        File.WriteAllBytes(Path.Combine(dir, "w.bin"), shard.ToArray());
        var json = """
            {"weightsManifest":[{"paths":["w.bin"],"weights":[
              {"name":"a","shape":[3],"dtype":"float32","quantization":{"dtype":"uint8","scale":0.5,"min":-1}},
              {"name":"b","shape":[1,2],"dtype":"float32","quantization":{"dtype":"float16"}},
              {"name":"c","shape":[],"dtype":"float32"}]}]}
            """;
        var manifest = Path.Combine(dir, "m.json");
        File.WriteAllText(manifest, json, Encoding.UTF8);
        var w = TfjsWeights.Read(manifest);
        Assert.Equal([-1f, 4f, 126.5f], w[0].Values);
        Assert.Equal([1, 2], w[1].Shape);
        Assert.Equal([1.5f, -2f], w[1].Values);
        Assert.Equal([3.25f], w[2].Values);

        File.WriteAllBytes(Path.Combine(dir, "w.bin"), shard.ToArray()[..8]);
        var error = Assert.Throws<InvalidDataException>(() => TfjsWeights.Read(manifest));
        Assert.Contains(manifest, error.Message);
        Assert.Contains("`c`", error.Message);
    }

    [Fact]
    public void TheBundledManifest_FillsEveryParameter()
    {
        var weights = TfjsWeights.Read(TestAssets.Assets.JudgeManifest);
        using var net = new FaceRecognitionNet();
        Assert.Equal(net.state_dict().Count, weights.Count);
        net.Load(weights, TestAssets.Assets.JudgeManifest);
        // Dropping a tensor is reported by name.
        var error = Assert.Throws<InvalidDataException>(() => net.Load(weights.Where(x => x.Name != "fc").ToList(), "m.json"));
        Assert.Contains("fc", error.Message);
    }
}
