"""divlab.viz: plotly figure builders. No Streamlit here: figures are plain ``go.Figure``
objects that a page, a notebook or a script can show or save."""

from .fit1d import COLORS, color_for, density_figure, fit_animation, fit_animation_spec, frame_steps, loss_figure, x_grid
from .fit2d import ellipse, fit2d_animation, fit2d_small_multiples, target_figure2d, xy_grid
from .flow import flow_animation
from .calculator import error_curve_figure, pair_figure
from .families import phase_figure, sweep_animation, sweep_overlay
from .gallery import target_preview, thumbnail
from .landscape import landscape_figure
from .race import race_animation, race_animation_spec, race_grid
from .theory import f_h_figure, h_along_x_figure
from .shown import figure_spec, for_display

__all__ = ["fit_animation", "fit_animation_spec", "density_figure", "loss_figure", "color_for", "COLORS", "frame_steps", "x_grid",
           "thumbnail", "target_preview", "race_animation", "race_animation_spec", "race_grid",
           "pair_figure", "error_curve_figure", "sweep_animation", "sweep_overlay", "phase_figure", "landscape_figure",
           "f_h_figure", "h_along_x_figure"]
__all__ += ["figure_spec", "for_display"]
__all__ += ["fit2d_animation", "fit2d_small_multiples", "target_figure2d", "ellipse", "xy_grid", "flow_animation"]
