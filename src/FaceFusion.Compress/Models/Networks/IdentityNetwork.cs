using FaceFusion.Compress.Data;
using FaceFusion.Compress.Imaging;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Import;
using TorchSharp;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Models.Networks;

/// <summary>
/// The identity embedder (default `fr_feature.onnx`) imported into TorchSharp: frozen, differentiable, for the ArcFace
/// identity loss and the identity metric. <see cref="forward"/> takes swapper crops (arcface_128 template, any size,
/// RGB in [−1,1]), warps them to the embedder's 112-px arcface_112_v2 template with a fixed similarity, normalises
/// (x − 127)/128 on the 0–255 scale, and returns L2-normalised embeddings.
/// </summary>
public sealed class IdentityNetwork : nn.Module<Tensor, Tensor>
{
    private readonly GraphModule embedder;
    private readonly string _output;

    public string ModelPath { get; }

    /// <summary>Imports the embedder from ONNX. Dispose the network to free its weights.</summary>
    private readonly float _mean = IdentityEmbedder.Mean, _std = IdentityEmbedder.Std;

    /// <param name="onnxPath">An ArcFace-style recogniser: 112×112 RGB on arcface_112_v2 → 512 numbers.</param>
    /// <param name="normalization">ffc ((x − 127)/128, the bundled fr_feature) or insightface ((x − 127.5)/127.5).</param>
    public IdentityNetwork(string onnxPath, string normalization = "ffc") : base("identity")
    {
        if (Assets.JudgeFiles.IsJudgeFile(onnxPath))
            throw new ArgumentException($"{onnxPath}: {Assets.JudgeFiles.RefusalMessage("identity embedder", onnxPath)}");
        (_mean, _std) = IdentityEmbedder.Normalization(normalization);
        ModelPath = onnxPath;
        var imported = OnnxImporter.Import(onnxPath, "identity_embedder");
        embedder = imported.BuildModule();
        foreach (var w in imported.Weights.Values) w.Dispose();
        _output = imported.Graph.Outputs[0].Name;
        InputName = imported.Graph.Inputs[0].Name;
        RegisterComponents();
        embedder.eval();
        foreach (var p in parameters()) p.requires_grad = false;
    }

    public string InputName { get; }
    public NetworkGraph Graph => embedder.Graph;

    /// <summary>Embeds already aligned and normalised 112×112 crops ([N,3,112,112], (x − 127)/128). Result is L2-normalised.</summary>
    public Tensor EmbedNormalised(Tensor crops112)
    {
        using var scope = NewDisposeScope();
        var raw = embedder.call(new Dictionary<string, Tensor> { [InputName] = crops112 })[_output];
        return nn.functional.normalize(raw.reshape(raw.shape[0], -1), dim: 1).MoveToOuterDisposeScope();
    }

    /// <summary>Swapper crops [N,3,R,R] in [−1,1] on arcface_128 → embeddings [N,512]. Gradients flow to the crops.</summary>
    public override Tensor forward(Tensor swapperCrops)
    {
        using var scope = NewDisposeScope();
        var warped = RecogniserCrops(swapperCrops, IdentityEmbedder.CropSize);
        // [−1,1] → 0–255 → (x − mean)/std.
        var normalised = warped.add(1).mul(127.5).sub(_mean).div(_std);
        return EmbedNormalised(normalised).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Swapper crops [N,3,R,R] on arcface_128 → the recogniser's crops [N,3,S,S] on arcface_112_v2 (S = 112 for
    /// ArcFace-style models), still in [−1,1], by the fixed similarity between the templates. Outside the source crop
    /// grid_sample gives 0 (mid-grey); the recogniser's template lies inside the swapper crop, so only the corners are
    /// touched. Gradients flow; the caller disposes the result.
    /// </summary>
    public static Tensor RecogniserCrops(Tensor swapperCrops, int size)
    {
        int r = (int)swapperCrops.shape[3];
        var cropToRecogniser = FaceTemplates.CropToCrop(FaceTemplates.Arcface128, r, FaceTemplates.Arcface112V2, size);
        return AffineWarp.Apply(swapperCrops, cropToRecogniser.Inverse(), size, size);
    }
}
