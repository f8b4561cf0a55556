using Microsoft.ML.OnnxRuntime;

namespace FaceFusion.Compress.Runtime;

/// <summary>Settings for ONNX Runtime sessions, recorded with every benchmark.</summary>
public sealed record OrtSettings
{
    /// <summary>Intra-op threads; 0 means all cores.</summary>
    public int IntraOpThreads { get; init; }
    public GraphOptimizationLevel OptimizationLevel { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;
    /// <summary>Where ONNX Runtime writes its optimised graph, when set (to show which kernels it chose).</summary>
    public string? OptimizedModelPath { get; init; }

    /// <summary>
    /// Whether idle intra-op threads spin-wait (ONNX Runtime's default, lowest latency for one session). Turn it off
    /// when several sessions take turns, or their spinning threads steal each other's cores.
    /// </summary>
    public bool AllowSpinning { get; init; } = true;

    public int EffectiveThreads => IntraOpThreads > 0 ? IntraOpThreads : Environment.ProcessorCount;
}

/// <summary>Creates ONNX Runtime sessions with telemetry disabled: faces must not leave the machine.</summary>
public static class OrtSessions
{
    private static readonly object Gate = new();
    private static bool _environmentReady;

    /// <summary>Initialises the process-wide ORT environment once, with telemetry events off.</summary>
    public static void EnsureEnvironment()
    {
        lock (Gate)
        {
            if (_environmentReady) return;
            var options = new EnvironmentCreationOptions { logId = "ffc", logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
            var env = OrtEnv.CreateInstanceWithOptions(ref options);
            env.DisableTelemetryEvents();
            _environmentReady = true;
        }
    }

    /// <summary>Builds session options; the caller disposes them.</summary>
    public static SessionOptions CreateOptions(OrtSettings? settings = null)
    {
        EnsureEnvironment();
        settings ??= new OrtSettings();
        var options = new SessionOptions
        {
            GraphOptimizationLevel = settings.OptimizationLevel,
            IntraOpNumThreads = settings.EffectiveThreads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        if (settings.OptimizedModelPath is not null) options.OptimizedModelFilePath = settings.OptimizedModelPath;
        if (!settings.AllowSpinning) options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        return options;
    }

    /// <summary>Opens a model file; the caller disposes the session. Errors name the file.</summary>
    public static InferenceSession Open(string modelPath, OrtSettings? settings = null)
    {
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"{modelPath}: model file not found", modelPath);
        using var options = CreateOptions(settings);
        try { return new InferenceSession(modelPath, options); }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"{modelPath}: ONNX Runtime cannot load this model ({e.Message.Trim()})", e);
        }
    }
}
