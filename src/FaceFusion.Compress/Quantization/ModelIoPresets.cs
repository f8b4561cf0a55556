using FaceFusion.Compress.Data;
using FaceFusion.Compress.Models.Architectures;
using FaceFusion.Compress.Models.Graph;
using FaceFusion.Compress.Models.Networks;
using FaceFusion.Compress.Training;
using static TorchSharp.torch;

namespace FaceFusion.Compress.Quantization;

/// <summary>
/// An imported model's IO convention: how its inputs are made from a prepared dataset (template, size,
/// normalisation) for calibration and evaluation, and which output is compared with the FP32 original.
/// </summary>
public abstract class ModelIoPreset
{
    /// <summary>The names <c>--io-preset</c> and the <c>io_preset</c> metadata key accept.</summary>
    public static readonly string[] Names = ["swapper", "arcface", "image"];

    /// <summary>The metadata key that declares a file's preset.</summary>
    public const string MetadataKey = "io_preset";

    public abstract string Name { get; }
    /// <summary>One line for the console: what the inputs are.</summary>
    public abstract string Description { get; }
    /// <summary>The graph output the INT8 model is compared on.</summary>
    public abstract string Output { get; }
    /// <summary>The output's peak-to-peak range for PSNR, or null to use the range observed on the FP32 original.</summary>
    public virtual double? OutputRange => null;

    /// <summary>
    /// Feeds of <paramref name="count"/> seeded faces of <paramref name="split"/>, 8 at a time, keyed by graph input
    /// name. Each feed's tensors are the consumer's to dispose.
    /// </summary>
    public abstract IEnumerable<Dictionary<string, Tensor>> Batches(string dataDir, string split, int count, int seed);

    /// <summary>
    /// The preset for <paramref name="graph"/>: <paramref name="requested"/> (--io-preset), else the file's
    /// <c>io_preset</c> or <c>template</c> metadata, else by the inputs (an image and a 512-d vector: swapper; one RGB
    /// 112×112 image: arcface; one RGB image: image). Mean and std apply to the single-image presets
    /// (127.5 and 127.5 when null). Throws "FILE: cause" when the inputs do not fit.
    /// </summary>
    public static ModelIoPreset Resolve(string path, NetworkGraph graph, string? requested, float? mean, float? std)
    {
        var name = requested ?? graph.Metadata.GetValueOrDefault(MetadataKey) ?? FromTemplate(graph) ?? FromInputs(graph)
            ?? throw new InvalidDataException($"{path}: inputs {Inputs(graph)} match no IO preset; pass --io-preset {string.Join("|", Names)}");
        var images = graph.Inputs.Where(i => i.IsImage).ToList();
        var vectors = graph.Inputs.Where(i => !i.IsImage).ToList();
        switch (name)
        {
            case "swapper":
                if (images.Count != 1 || images[0].Channels != 3 || vectors.Count != 1 || vectors[0].Channels != SwapperIO.IdentityFeatures)
                    throw new InvalidDataException($"{path}: the swapper preset needs an RGB image [N,3,S,S] and a {SwapperIO.IdentityFeatures}-d source [N,{SwapperIO.IdentityFeatures}]; the inputs are {Inputs(graph)}");
                if (mean is not null || std is not null)
                    throw new InvalidDataException($"{path}: --mean/--std do not apply to the swapper preset (target crops are in [-1,1])");
                var output = graph.Outputs.FirstOrDefault(o => o.Name == SwapperIO.Output) ?? graph.Outputs[0];
                return new SwapperIoPreset(images[0].Name, vectors[0].Name, graph.Resolution, output.Name);
            case "arcface":
            case "image":
                if (graph.Inputs.Count != 1 || images.Count != 1 || images[0].Channels != 3)
                    throw new InvalidDataException($"{path}: the {name} preset needs exactly one RGB image input [N,3,S,S]; the inputs are {Inputs(graph)}");
                return name == "arcface"
                    ? new ArcfaceIoPreset(images[0].Name, graph.Resolution, mean ?? 127.5f, std ?? 127.5f, graph.Outputs[0].Name)
                    : new ImageIoPreset(images[0].Name, graph.Resolution, mean ?? 127.5f, std ?? 127.5f, graph.Outputs[0].Name);
            default:
                throw new InvalidDataException($"{path}: unknown IO preset '{name}' (use {string.Join(", ", Names)})");
        }
    }

    private static string? FromTemplate(NetworkGraph graph) => graph.Metadata.GetValueOrDefault("template") switch
    {
        "arcface_128" when graph.Inputs.Count == 2 => "swapper",
        "arcface_112_v2" => "arcface",
        _ => null,
    };

    private static string? FromInputs(NetworkGraph graph)
    {
        var images = graph.Inputs.Where(i => i.IsImage && i.Channels == 3).ToList();
        if (graph.Inputs.Count == 2 && images.Count == 1 && graph.Inputs.Any(i => !i.IsImage && i.Channels == SwapperIO.IdentityFeatures)) return "swapper";
        if (graph.Inputs.Count != 1 || images.Count != 1) return null;
        // A 112-px face model is an ArcFace-style recogniser in practice: arcface_112_v2 is the template at that size.
        return graph.Resolution == IdentityEmbedder.CropSize ? "arcface" : "image";
    }

    private static string Inputs(NetworkGraph graph) =>
        string.Join(", ", graph.Inputs.Select(i => i.IsImage ? $"{i.Name} [N,{i.Channels},S,S]" : $"{i.Name} [N,{i.Channels}]"));
}

/// <summary>
/// The toolkit's and FaceFusion HyperSwap's swapper convention: target crops on arcface_128 at the model's size in
/// [−1,1], and the source identity as a 512-d embedding, both from the dataset's pairs (the same seeded pairs the
/// toolkit's own PTQ calibrates on). Compared on the image output, whose tanh range is 2.
/// </summary>
public sealed class SwapperIoPreset(string target, string source, int size, string output) : ModelIoPreset
{
    public override string Name => "swapper";
    public override string Description => $"swapper: {target} {size}-px arcface_128 crops in [-1,1], {source} 512-d embeddings of the pair's source";
    public override string Output => output;
    public override double? OutputRange => 2.0;

    public override IEnumerable<Dictionary<string, Tensor>> Batches(string dataDir, string split, int count, int seed)
    {
        foreach (var feed in Calibrator.SwapperBatches(size, dataDir, count, seed, split))
            yield return new Dictionary<string, Tensor> { [target] = feed[SwapperIO.Target], [source] = feed[SwapperIO.Source] };
    }
}

/// <summary>
/// ArcFace-style recognisers: crops on arcface_112_v2 at the model's size (112 px), warped from the dataset's
/// arcface_128 crops by the fixed similarity <see cref="IdentityNetwork"/> uses, normalised (x − mean)/std on the
/// 0–255 scale.
/// </summary>
public sealed class ArcfaceIoPreset(string input, int size, float mean, float std, string output) : ModelIoPreset
{
    /// <summary>Side of the arcface_128 crops the recogniser crops are warped from (enough detail for 112 px).</summary>
    public const int SourceCropSize = 128;

    public override string Name => "arcface";
    public override string Description => $"arcface: {input} {size}-px arcface_112_v2 crops, (x - {mean})/{std}";
    public override string Output => output;

    public override IEnumerable<Dictionary<string, Tensor>> Batches(string dataDir, string split, int count, int seed)
    {
        foreach (var crops in ImageIoPreset.Crops(dataDir, split, SourceCropSize, count, seed))
        {
            Tensor normalised;
            using (crops) normalised = Normalise(crops);
            yield return new Dictionary<string, Tensor> { [input] = normalised };
        }
    }

    /// <summary>arcface_128 crops in [−1,1] → this preset's normalised recogniser crops; the caller disposes the result.</summary>
    public Tensor Normalise(Tensor swapperCrops)
    {
        using var scope = NewDisposeScope();
        return IdentityNetwork.RecogniserCrops(swapperCrops, size).add(1).mul(127.5).sub(mean).div(std).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Any other single-image CNN: the dataset's arcface_128 crops resized to the model's square input, normalised
/// (x − mean)/std on the 0–255 scale.
/// </summary>
public sealed class ImageIoPreset(string input, int size, float mean, float std, string output) : ModelIoPreset
{
    public override string Name => "image";
    public override string Description => $"image: {input} {size}-px arcface_128 crops, (x - {mean})/{std}";
    public override string Output => output;

    public override IEnumerable<Dictionary<string, Tensor>> Batches(string dataDir, string split, int count, int seed)
    {
        foreach (var crops in Crops(dataDir, split, size, count, seed))
        {
            Tensor normalised;
            using (crops) normalised = Normalise(crops);
            yield return new Dictionary<string, Tensor> { [input] = normalised };
        }
    }

    private Tensor Normalise(Tensor crops)
    {
        using var scope = NewDisposeScope();
        return crops.add(1).mul(127.5).sub(mean).div(std).MoveToOuterDisposeScope();
    }

    /// <summary>Seeded arcface_128 crops [≤8,3,S,S] in [−1,1] of <paramref name="split"/>; the caller disposes each.</summary>
    internal static IEnumerable<Tensor> Crops(string dataDir, string split, int size, int count, int seed)
    {
        using var data = new FaceSwapData(dataDir, split, size);
        var rng = new Random(seed);
        var faces = Enumerable.Range(0, data.Count).OrderBy(_ => rng.Next()).Take(Math.Min(count, data.Count)).ToArray();
        for (int start = 0; start < faces.Length; start += 8)
        {
            var chunk = faces.Skip(start).Take(8).ToArray();
            using var batch = data.Pairs(chunk, chunk);
            yield return batch.Target.alias();
        }
    }
}
