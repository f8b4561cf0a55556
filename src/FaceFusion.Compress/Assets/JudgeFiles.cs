using System.Security.Cryptography;

namespace FaceFusion.Compress.Assets;

/// <summary>
/// What identifies the files of the independent identity judge (face-api.js's FaceRecognitionNet, used by
/// <c>Judging.IdentityJudge</c>). It lives here, below training, so that training configs can refuse the judge
/// without depending on it: a model must never be trained against the recogniser that scores it.
/// </summary>
public static class JudgeFiles
{
    /// <summary>SHA-256 of <c>face_recognition_model-weights_manifest.json</c> in @vladmandic/face-api 1.7.15.</summary>
    public const string ManifestSha256 = "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b";
    /// <summary>SHA-256 of <c>face_recognition_model.bin</c> in @vladmandic/face-api 1.7.15.</summary>
    public const string WeightsSha256 = "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589";
    /// <summary>File-name stem of both judge files in the face-api package and the cache.</summary>
    public const string FileStem = "face_recognition_model";

    /// <summary>
    /// True when <paramref name="path"/> is one of the judge's files: by name (the package's names), or, when the file
    /// exists, by content (a renamed copy). A conversion of the weights to another format is not recognised.
    /// </summary>
    public static bool IsJudgeFile(string path)
    {
        if (Path.GetFileName(path).StartsWith(FileStem, StringComparison.OrdinalIgnoreCase)) return true;
        if (!File.Exists(path)) return false;
        string hash = Sha256(path);
        return hash == ManifestSha256 || hash == WeightsSha256;
    }

    /// <summary>Lowercase hex SHA-256 of a file.</summary>
    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
    }

    /// <summary>The error for a training input that is the judge; <paramref name="key"/> names the config key.</summary>
    public static string RefusalMessage(string key, string path) =>
        $"{key} '{path}' is the identity judge (face-api FaceRecognitionNet): it scores swaps and must never be trained against; use another recogniser";
}
