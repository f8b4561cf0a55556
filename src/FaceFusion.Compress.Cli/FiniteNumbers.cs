using System.Reflection;
using Spectre.Console.Cli;

namespace FaceFusion.Compress.Cli;

/// <summary>
/// Refuses NaN and infinite values of every floating-point option of every command, before the command runs: NaN
/// passes no comparison, so range checks let it through (a NaN --mask-blur once painted a black box over the face).
/// </summary>
internal sealed class FiniteNumbers : ICommandInterceptor
{
    public void Intercept(CommandContext context, CommandSettings settings)
    {
        foreach (var property in settings.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var value = property.GetValue(settings);
            bool finite = value switch { double d => double.IsFinite(d), float f => float.IsFinite(f), _ => true };
            if (finite) continue;
            var option = property.GetCustomAttribute<CommandOptionAttribute>()?.LongNames.FirstOrDefault() is { } name ? $"--{name}" : property.Name;
            throw new ArgumentException($"{option} {Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)}: a finite number is needed");
        }
    }

    public void InterceptResult(CommandContext context, CommandSettings settings, ref int result) { }
}
