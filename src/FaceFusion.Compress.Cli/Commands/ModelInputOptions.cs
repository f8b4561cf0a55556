using System.ComponentModel;
using FaceFusion.Compress.Runtime;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>The options of commands that run any ONNX model on made-up or given inputs.</summary>
internal abstract class ModelInputSettings : CommandSettings
{
    [CommandOption("--shape <NAME=DIMS>")]
    [Description("Dimensions of an input with symbolic dimensions, e.g. input=1x3x112x112 (repeatable). Default: batch 1, the file's static sizes. Not for swappers in ffc bench.")]
    public string[] Shapes { get; init; } = [];

    [CommandOption("--input <NAME=FILE>")]
    [Description("A float32 input read from FILE (.npy, or raw little-endian .f32) instead of made-up values (repeatable). Made up: uniform in [[−1, 1]], a swapper's source unit-normalised. Not for swappers in ffc bench.")]
    public string[] Inputs { get; init; } = [];
}

/// <summary>Parsing of <see cref="ModelInputSettings"/>.</summary>
internal static class ModelInputOptions
{
    /// <summary>Parses both option lists; every name must be an input of at least one of <paramref name="models"/>.</summary>
    public static (Dictionary<string, int[]> Shapes, Dictionary<string, string> Files) Parse(IEnumerable<string> shapeOptions, IEnumerable<string> inputOptions, IReadOnlyCollection<string> models)
    {
        var shapes = new Dictionary<string, int[]>();
        foreach (var (name, dims) in shapeOptions.Select(OrtTimedModel.ParseShape))
            if (!shapes.TryAdd(name, dims)) throw new ArgumentException($"--shape '{name}' given twice");
        var files = new Dictionary<string, string>();
        foreach (var text in inputOptions)
        {
            if (text.Split('=', 2) is not [{ Length: > 0 } name, { Length: > 0 } file])
                throw new ArgumentException($"--input '{text}': use NAME=FILE (a .npy or raw float32 file)");
            if (!files.TryAdd(name, file)) throw new ArgumentException($"--input '{name}' given twice");
        }
        foreach (var name in shapes.Keys.Concat(files.Keys))
            if (!models.Any(m => { using var s = OrtSessions.Open(m); return s.InputMetadata.ContainsKey(name); }))
                throw new ArgumentException($"--shape/--input name '{name}': none of the models has an input of that name");
        return (shapes, files);
    }
}
