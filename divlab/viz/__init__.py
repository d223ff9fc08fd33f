"""divlab.viz: plotly figure builders. No Streamlit here: figures are plain ``go.Figure``
objects that a page, a notebook or a script can show or save."""

from .fit1d import COLORS, color_for, density_figure, fit_animation, frame_steps, loss_figure, x_grid
from .gallery import target_preview, thumbnail
from .race import race_animation, race_grid

__all__ = ["fit_animation", "density_figure", "loss_figure", "color_for", "COLORS", "frame_steps", "x_grid",
           "thumbnail", "target_preview", "race_animation", "race_grid"]
