using System.Runtime.Intrinsics.X86;

namespace FaceFusion.Compress.Runtime;

/// <summary>
/// The CPU the numbers were measured on: its model and the vector features that decide how fast ONNX Runtime's
/// FP32 and INT8 kernels are (AVX-512 VNNI or AVX-VNNI make INT8 far faster than AVX2's multiply-add sequences).
/// </summary>
public static class CpuInfo
{
    private static readonly string[] Relevant = ["avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8"];

    /// <summary>For example "AMD EPYC; avx2 fma".</summary>
    public static string Describe { get; } = Read();

    /// <summary>True when the CPU has an 8-bit dot-product instruction (VNNI).</summary>
    public static bool HasVnni => Describe.Contains("vnni", StringComparison.Ordinal);

    private static string Read()
    {
        string model = "unknown CPU";
        var features = new List<string>();
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal) && model == "unknown CPU") model = line[(line.IndexOf(':') + 1)..].Trim();
                if (line.StartsWith("flags", StringComparison.Ordinal))
                {
                    var flags = line[(line.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
                    features = Relevant.Where(flags.Contains).ToList();
                    break;
                }
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        if (features.Count == 0)
        {
            if (Avx2.IsSupported) features.Add("avx2");
            if (Fma.IsSupported) features.Add("fma");
            if (Avx512F.IsSupported) features.Add("avx512f");
            if (AvxVnni.IsSupported) features.Add("avx_vnni");
        }
        return $"{model}; {string.Join(' ', features)}".Replace(',', ' ');
    }
}
