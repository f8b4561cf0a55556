namespace FaceFusion.Compress.Assets;

/// <summary>
/// Where `make setup` caches the bundled models and media: $FFC_CACHE, else `.cache/ffc` in the clone (found by
/// walking up from the working directory, then from the program's folder, to the folder holding the solution).
/// </summary>
public sealed class AssetPaths
{
    public string Root { get; }

    public AssetPaths(string root) => Root = Path.GetFullPath(root);

    public string Models => Path.Combine(Root, "models");
    public string Detector => Path.Combine(Models, "fr_detect.onnx");
    public string Landmarks => Path.Combine(Models, "fr_landmark.onnx");
    public string IdentityEmbedder => Path.Combine(Models, "fr_feature.onnx");
    public string ResNet18 => Path.Combine(Models, "ResNet18.onnx");
    public string ResNetPreprocess => Path.Combine(Models, "ResNetPreprocess.onnx");
    /// <summary>face-api.js's FaceRecognitionNet (the independent identity judge): TF.js weights manifest.</summary>
    public string JudgeManifest => Path.Combine(Models, "faceapi", "face_recognition_model-weights_manifest.json");
    /// <summary>The judge's weights, the binary shard <see cref="JudgeManifest"/> names.</summary>
    public string JudgeWeights => Path.Combine(Models, "faceapi", "face_recognition_model.bin");
    public string Videos => Path.Combine(Root, "media", "videos");
    public string Stills => Path.Combine(Root, "media", "stills");

    /// <summary>The repository root (the folder holding FaceFusion.Compress.sln), or null outside a clone.</summary>
    public static string? FindRepositoryRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "FaceFusion.Compress.sln"))) return dir.FullName;
        }
        return null;
    }

    /// <summary>Locates the cache; throws with the fix when `make setup` has not been run.</summary>
    public static AssetPaths Locate()
    {
        var env = Environment.GetEnvironmentVariable("FFC_CACHE");
        string root = !string.IsNullOrEmpty(env)
            ? env
            : Path.Combine(FindRepositoryRoot() ?? Directory.GetCurrentDirectory(), ".cache", "ffc");
        var paths = new AssetPaths(root);
        if (!File.Exists(paths.Detector))
            throw new FileNotFoundException(
                $"{paths.Detector}: bundled models not found; run `make setup` (or set FFC_CACHE to the asset cache)");
        return paths;
    }
}
