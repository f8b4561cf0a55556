using FaceFusion.Compress.Runtime;

namespace FaceFusion.Compress.Cli.Commands;

/// <summary>`--shape NAME=DIMS` and `--input NAME=FILE` of the commands that run any ONNX model.</summary>
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
